//go:build race

package dedup

// raceEnabled: under -race the largest tests use smaller corpora, so that
// the package stays well within its time on two busy cores.
const raceEnabled = true
