//go:build race

package ablate

// raceEnabled: the trainer runs about ten times slower under -race, so the
// tests that train models skip there (the race detector still covers the
// split, the preparation and the orchestration in TestRunSmall).
const raceEnabled = true
