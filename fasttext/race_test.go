//go:build race

package fasttext_test

// raceEnabled: the race detector makes page extraction and training
// several times slower, so the tests use fewer pages and skip the
// measurements.
const raceEnabled = true
