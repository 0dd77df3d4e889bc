package report

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSnippet(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"short  text\n\nhere", 40, "short text here"},
		{"ab cd ef", 4, "ab c…"},
		{"日本語のテキスト", 3, "日本語…"},
		{strings.Repeat("é", 10000), 5, "ééééé…"},
		{"", 5, ""},
	} {
		if got := snippet(c.in, c.n); got != c.want {
			t.Errorf("snippet(%.20q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
	long := strings.Repeat("word ", 1_000_000)
	if s := snippet(long, 100); !utf8.ValidString(s) || utf8.RuneCountInString(s) != 101 {
		t.Errorf("snippet of a long text: %d runes", utf8.RuneCountInString(s))
	}
}
