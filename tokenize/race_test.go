//go:build race

package tokenize

// raceEnabled shrinks the tiktoken-go comparisons under -race, where the
// reference's regexp2 engine runs about ten times slower.
const raceEnabled = true
