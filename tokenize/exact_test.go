package tokenize

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

var fullCorpus = flag.Bool("tokenize.full", false, "compare with tiktoken-go on every byte and document of the shared data (minutes); by default the first 32 KiB of each file and document (4 KiB under -race)")

// Vectors from tiktoken's own tests (../shared/data/tokenizer/tiktoken_tests_test_encoding.py).
func TestTiktokenVectors(t *testing.T) {
	cases := []struct {
		enc  string
		text string
		want []uint32
	}{
		{"r50k_base", "hello world", []uint32{31373, 995}},
		{"p50k_base", "hello world", []uint32{31373, 995}},
		{"cl100k_base", "hello world", []uint32{15339, 1917}},
		{"r50k_base", "0", []uint32{15}},
		{"r50k_base", "00", []uint32{405}},
		{"r50k_base", "000", []uint32{830}},
		{"r50k_base", "0000", []uint32{2388}},
		{"r50k_base", "00000", []uint32{20483}},
		{"r50k_base", "000000", []uint32{10535}},
		{"r50k_base", "0000000", []uint32{24598}},
		{"r50k_base", "00000000", []uint32{8269}},
		{"r50k_base", "000000000", []uint32{10535, 830}},
		{"r50k_base", "0000000000", []uint32{8269, 405}},
		{"r50k_base", "00000000000", []uint32{8269, 830}},
		{"r50k_base", "000000000000", []uint32{8269, 2388}},
		{"r50k_base", "0000000000000", []uint32{8269, 20483}},
		{"r50k_base", "00000000000000", []uint32{8269, 10535}},
		{"r50k_base", "000000000000000", []uint32{8269, 24598}},
		{"r50k_base", "0000000000000000", []uint32{25645}},
		{"r50k_base", "00000000000000000", []uint32{8269, 10535, 830}},
		{"cl100k_base", "rer", []uint32{38149}},
		{"cl100k_base", "'rer", []uint32{2351, 81}},
		{"cl100k_base", "today\n ", []uint32{31213, 198, 220}},
		{"cl100k_base", "today\n \n", []uint32{31213, 27907}},
		{"cl100k_base", "today\n  \n", []uint32{31213, 14211}},
		{"cl100k_base", " \u00850", []uint32{220, 126, 227, 15}},
		{"cl100k_base", "👍", []uint32{9468, 239, 235}},
		{"r50k_base", "", nil},
	}
	for _, c := range cases {
		tok := mustGet(t, c.enc)
		got := tok.EncodeOrdinary(c.text)
		if len(got) == 0 && len(c.want) == 0 {
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s %q: got %v, want %v", c.enc, c.text, got, c.want)
		}
	}
	for _, c := range []struct {
		enc  string
		want []uint32
	}{{"r50k_base", []uint32{31373, 220, 50256}}, {"cl100k_base", []uint32{15339, 220, 100257}}} {
		got, err := mustGet(t, c.enc).Encode("hello <|endoftext|>", AllSpecial, nil)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s Encode(allowed=all): got %v %v, want %v", c.enc, got, err, c.want)
		}
	}
	// test_simple: decode_single_token_bytes then encode_single_token is the identity.
	for _, name := range allEncodings {
		tok := mustGet(t, name)
		for id := uint32(0); id < 10000; id++ {
			b, ok := tok.TokenBytes(id)
			if !ok {
				continue
			}
			if r, ok := tok.ranks.get(string(b)); !ok || tok.id(r) != id {
				t.Fatalf("%s: token %d bytes %q map back to %d", name, id, b, r)
			}
		}
	}
}

// TestLargeRepeated: catastrophically repetitive input round-trips and
// matches tiktoken-go (which is quadratic, so sizes stay moderate there).
func TestLargeRepeated(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	for _, name := range allEncodings {
		tok := mustGet(t, name)
		ref := refEncoding(t, name)
		for _, c := range []string{"^", "0", "a", "'s", " ", "\n", "x"} {
			big := strings.Repeat(c, 10000)
			for _, v := range []string{big, " " + big, " " + big + "\n"} {
				ids := tok.EncodeOrdinary(v)
				back, err := tok.Decode(ids)
				if err != nil || string(back) != v {
					t.Fatalf("%s: round trip of %d x %q failed", name, len(v), c)
				}
			}
			v := " " + strings.Repeat(c, 300) + "\n"
			if got, want := tok.EncodeOrdinary(v), refEncodeOrdinary(ref, v); !slices.Equal(got, want) {
				t.Errorf("%s: 300 x %q: got %d ids, tiktoken-go %d", name, c, len(got), len(want))
			}
		}
	}
	// tiktoken's test_large_repeated.
	if ids := mustGet(t, "o200k_base").EncodeOrdinary(strings.Repeat("x", 1_000_000)); len(ids) == 0 {
		t.Fatal("no ids for 1e6 x")
	}
}

func firstDiff(a, b []uint32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func compareWithRef(t *testing.T, tok *Tokenizer, label, text string) {
	t.Helper()
	text = asRunes(text)
	got := tok.EncodeOrdinary(text)
	want := refEncodeOrdinary(refEncoding(t, tok.Name()), text)
	if !slices.Equal(got, want) {
		i := firstDiff(got, want)
		gb, _ := tok.Decode(got[max(0, i-3):min(len(got), i+4)])
		wb, _ := tok.Decode(want[max(0, i-3):min(len(want), i+4)])
		t.Errorf("%s %s: differs from tiktoken-go at id %d: got %v (%q), want %v (%q)", tok.Name(), label, i,
			got[max(0, i-3):min(len(got), i+4)], gb, want[max(0, i-3):min(len(want), i+4)], wb)
		return
	}
	back, err := tok.Decode(got)
	if err != nil || string(back) != text {
		t.Errorf("%s %s: decode(encode(x)) != x", tok.Name(), label)
	}
}

// TestExactOnSharedData compares every file of ../shared/data (decompressed;
// WARC/WET/JSONL as raw text) and every JSONL document's text with
// tiktoken-go, for each encoding.
func TestExactOnSharedData(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	texts := sharedTexts(t)
	names := make([]string, 0, len(texts))
	for k := range texts {
		names = append(names, k)
	}
	sort.Strings(names)
	limit := 32 << 10
	if raceEnabled {
		limit = 4 << 10
	}
	if *fullCorpus {
		limit = 1 << 40
	}
	for _, enc := range allEncodings {
		tok := mustGet(t, enc)
		t.Run(enc, func(t *testing.T) {
			for _, n := range names {
				s := texts[n]
				// Compare in blocks: the blocks are inputs in their own right,
				// and tiktoken-go is slow on megabyte strings.
				for off := 0; off < len(s) && off < limit; off += 32 << 10 {
					compareWithRef(t, tok, fmt.Sprintf("%s@%d", n, off), s[off:min(len(s), off+limit, off+32<<10)])
				}
				if strings.HasSuffix(n, ".jsonl") || strings.HasSuffix(n, ".jsonl.gz") || strings.HasSuffix(n, ".json.gz") {
					for i, line := range strings.Split(s, "\n") {
						var doc struct {
							Text string `json:"text"`
						}
						if json.Unmarshal([]byte(line), &doc) == nil && doc.Text != "" {
							if !*fullCorpus && len(doc.Text) > limit {
								doc.Text = doc.Text[:limit]
							}
							compareWithRef(t, tok, fmt.Sprintf("%s doc %d", n, i), doc.Text)
						}
					}
				}
			}
		})
	}
}

// runePool draws characters from every class the patterns distinguish.
var runePool = []rune("aZé ßİſǅʰ々中あ한Ωωﬀ\u0301\u0903\u20dd0123٣۵Ⅻ½²'\"!?.,;:/\\-_()[]{}<>#@&*+=~`$%^| \t\n\r\v\f\u0085\u00a0\u1680\u2003\u2028\u2029\u3000\u200b\ufeff🙂😀𝔘𝕒𐐷\U0001F44D\ufffd")

func randomText(r *rand.Rand, n int) string {
	var sb strings.Builder
	words := []string{"'s", "'S", "'re", "'VE", "'ll", "'d", "'m", "'t", " the", "Hello", "HELLO", "heLLo", "123456", "  ", "\r\n", "\n\n", " \n ", "don't", "I'M"}
	for sb.Len() < n {
		if r.IntN(4) == 0 {
			sb.WriteString(words[r.IntN(len(words))])
		} else {
			sb.WriteRune(runePool[r.IntN(len(runePool))])
		}
	}
	return sb.String()
}

// TestExactOnGeneratedText needs no shared data: random mixtures of every
// character class, compared with tiktoken-go.
func TestExactOnGeneratedText(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, enc := range allEncodings {
		tok := mustGet(t, enc)
		n := 300
		if raceEnabled {
			n = 60
		}
		for i := 0; i < n; i++ {
			compareWithRef(t, tok, fmt.Sprintf("random #%d", i), randomText(r, 1+r.IntN(200)))
		}
	}
}

// TestMergePathsAgree: the heap merge used for long pieces gives the same
// ids as the small-piece scan on every piece both can take.
func TestMergePathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{"ab", "0123", "x ", "aeiou nrst", "\xe4\xb8\xad\xe6\x96\x87"}
	for _, name := range allEncodings {
		tok := mustGet(t, name)
		for i := 0; i < 400; i++ {
			al := alphabets[r.IntN(len(alphabets))]
			n := 2 + r.IntN(smallPiece-1)
			b := make([]byte, n)
			for j := range b {
				b[j] = al[r.IntN(len(al))]
			}
			s := string(b)
			small := tok.mergeSmall(nil, s)
			large := tok.mergeLarge(nil, s)
			if !slices.Equal(small, large) {
				t.Fatalf("%s %q: small %v, large %v", name, s, small, large)
			}
		}
	}
}
