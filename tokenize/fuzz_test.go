package tokenize

import (
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks, for every encoding, that decode(encode(x)) == x for any
// byte string, and that the ids equal tiktoken-go's on valid UTF-8.
//
//	go test ./tokenize -run '^$' -fuzz FuzzEncode -fuzztime 2m
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"hello world", "today\n  \n", " \u00850", "'S'Re DON'T", "請考試我的軟體！12345",
		"a\u0301\u0301B\u0903x", "ǅungla Ⅻ½", " \t\n\r\n  x", "\xff\xfe abc \xc3", "I'M 'll 've", "👍🏽 x", "x/\n/ /"} {
		f.Add([]byte(s))
	}
	toks := make([]*Tokenizer, len(allEncodings))
	for i, n := range allEncodings {
		toks[i] = mustGet(f, n)
		refEncoding(f, n)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := string(data)
		for _, tok := range toks {
			ids := tok.EncodeOrdinary(s)
			back, err := tok.Decode(ids)
			if err != nil || string(back) != s {
				t.Fatalf("%s: decode(encode(%q)) = %q, %v", tok.Name(), s, back, err)
			}
			if !utf8.ValidString(s) {
				continue
			}
			if want := refEncodeOrdinary(refEncoding(t, tok.Name()), s); !slices.Equal(ids, want) {
				t.Fatalf("%s %q: got %v, tiktoken-go %v", tok.Name(), s, ids, want)
			}
		}
	})
}
