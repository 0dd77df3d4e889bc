//go:build race

package pipelines

// raceEnabled: child processes run several times slower under -race, so
// the kill test uses fewer kill points.
const raceEnabled = true
