//go:build !race

package fasttext_test

const raceEnabled = false
