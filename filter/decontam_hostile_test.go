package filter

// Issue 26: the decontamination index is verified when opened (C3), and
// the normalisation is GPT-3's and lm-eval-harness's, with Unicode folding,
// so that no evasion of the review's list gets past it (W3).

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// evalRecord is the one eval record of the small test index.
const evalRecord = "The committee said it doesn't expect the e-mail filter to catch every final contaminated benchmark question before release."

// smallIndex writes an index of one set holding evalRecord and a few
// filler records, and returns its path and bytes.
func smallIndex(t testing.TB) (string, []byte) {
	t.Helper()
	b := &IndexBuilder{}
	set, err := b.AddSet("evals")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(set, "r0", evalRecord); err != nil {
		t.Fatal(err)
	}
	for i, s := range []string{
		"a completely different record about rivers and mountains and the long history of the valley towns",
		"short one",
		"yet another record that talks about cooking pasta with tomatoes garlic olive oil and fresh basil leaves",
	} {
		if err := b.Add(set, "r"+string(rune('1'+i)), s); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "evals.dcx")
	if _, err := b.Write(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func wordList(s string) string {
	var out []string
	for _, w := range normWords(s, nil) {
		out = append(out, s[w.start:w.end])
	}
	return strings.Join(out, "|")
}

func wordHashes(s string) []uint64 {
	var out []uint64
	for _, w := range normWords(s, nil) {
		out = append(out, w.h)
	}
	return out
}

// W3: each evasion of the review normalises to the plain word.
func TestNormWordsEvasions(t *testing.T) {
	same := [][2]string{
		{"don't", "dont"},
		{"Don’t", "dont"}, // typographic apostrophe
		{"e-mail", "email"},
		{"e–mail", "email"},    // en dash
		{"cafe\u0301", "café"}, // NFD accent
		{"CAFÉ", "café"},
		{"ﬁnal", "final"},                      // ligature
		{"Ｆｉｎａｌ", "final"},                     // fullwidth
		{"ｆｉｎａｌ１２３", "final123"},               // fullwidth digits
		{"con\u00adtaminated", "contaminated"}, // soft hyphen
		{"con\u200btaminated", "contaminated"}, // zero-width space
		{"con\u200ctaminated", "contaminated"}, // zero-width non-joiner
		{"con\u200dtaminated", "contaminated"}, // zero-width joiner
		{"\ufeffcontaminated", "contaminated"}, // BOM
		{"con\u2060taminated", "contaminated"}, // word joiner
		{"5,000", "5000"},
		{"well @-@ known", "wellknown"},
		{"well-known", "wellknown"},
	}
	for _, c := range same {
		a, b := wordHashes(c[0]), wordHashes(c[1])
		if len(a) != 1 || len(b) != 1 || a[0] != b[0] {
			t.Errorf("%q (%s) and %q (%s) differ", c[0], wordList(c[0]), c[1], wordList(c[1]))
		}
	}
	for _, c := range [][2]string{{"cafe", "café"}, {"well known", "wellknown"}} {
		if a, b := wordHashes(c[0]), wordHashes(c[1]); len(a) == len(b) && a[0] == b[0] {
			t.Errorf("%q and %q should differ", c[0], c[1])
		}
	}
	// Spans stay in the original text.
	if got := wordList("A ﬁne, ｆｕｌｌ e-mail!"); got != "A|ﬁne|ｆｕｌｌ|e-mail" {
		t.Errorf("spans %q", got)
	}
}

// W3 end to end: the eval record disguised with every evasion at once is
// still dropped; unrelated text is kept.
func TestDecontamEvasionsDropped(t *testing.T) {
	path, _ := smallIndex(t)
	x := openTestIndex(t, path)
	rule := decontamRule(x, DecontamDrop)
	disguised := []string{
		"The committee said it dont expect the email filter to catch every final contaminated benchmark question before release.",
		"THE COMMITTEE SAID IT DOESN’T EXPECT THE E‑MAIL FILTER TO CATCH EVERY ﬁNAL CONTAMINATED BENCHMARK QUESTION.",
		"Ｔｈｅ ｃｏｍｍｉｔｔｅｅ said it doesn't expect the e-mail fil\u00adter to catch every ﬁnal con\u200btaminated bench\u200dmark question",
		"\ufeffThe committee said it doesn\u2060't expect the e-mail filter to catch every final contaminated benchmark question",
		"The committee said it doesn't expect the e\u2010mail filter to catch every final contaminated benchmark question.",
	}
	for _, d := range disguised {
		if a := rule.Annotate(&shards.Document{Text: "Crawl text. " + d + " More crawl."}); a.Reason != DecontamNGram {
			t.Errorf("kept %q (words %s)", d, wordList(d))
		}
	}
	if a := rule.Annotate(&shards.Document{Text: "The committee met on Tuesday to discuss the budget for next year and nothing else at all."}); a.Reason != "" {
		t.Errorf("dropped unrelated text: %+v", a)
	}
}

// C3: a tampered, truncated or crafted index is refused at open with an
// error naming the file; nothing it asks for is allocated first.
func TestOpenIndexRefusesBadFiles(t *testing.T) {
	path, good := smallIndex(t)
	if _, err := OpenIndex(path); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	rehash := func(b []byte) []byte {
		sum := sha256.Sum256(b[indexHeaderSize:])
		copy(b[72:104], sum[:])
		return b
	}
	hdr := func(off int, v uint64, width int, fix bool) []byte {
		b := bytes.Clone(good)
		if width == 4 {
			le.PutUint32(b[off:], uint32(v))
		} else {
			le.PutUint64(b[off:], v)
		}
		if fix {
			rehash(b)
		}
		return b
	}
	entries := le.Uint64(good[16:])
	recsOff := le.Uint64(good[40:])
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"flipped hash byte", func() []byte { b := bytes.Clone(good); b[indexHeaderSize+3] ^= 1; return b }(), "SHA-256"},
		{"flipped name byte", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), "SHA-256"},
		{"truncated", good[:len(good)-10], "truncated"},
		{"header only", good[:indexHeaderSize], "truncated"},
		{"nrecs 0xffffffff", hdr(28, 0xffffffff, 4, true), "names section"},
		{"nsets 0xffffffff", hdr(24, 0xffffffff, 4, true), "names section"},
		{"N=1", hdr(8, 1, 4, true), "n-gram length 1"},
		{"N=2^30", hdr(8, 1<<30, 4, true), "n-gram length"},
		{"entries 2^40", hdr(16, 1<<40, 8, true), "inconsistent header"},
		{"record out of range", func() []byte {
			b := bytes.Clone(good)
			le.PutUint32(b[recsOff:], 1000)
			return rehash(b)
		}(), "record 1000"},
		{"random hashes", func() []byte {
			b := bytes.Clone(good)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range entries {
				le.PutUint64(b[indexHeaderSize+8*i:], rng.Uint64())
			}
			return rehash(b)
		}(), "bucket"},
		{"old format", func() []byte { b := bytes.Clone(good); copy(b, "SMLTDCX1"); return b }(), "rebuild it"},
		{"not an index", []byte("hello"), "bad magic"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".dcx")
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		x, err := OpenIndex(p)
		if err == nil {
			x.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v, want an error naming %s and %q", c.name, err, p, c.want)
		}
	}
}

// C3: Record never panics, whatever id it is given.
func TestIndexRecordOutOfRange(t *testing.T) {
	path, _ := smallIndex(t)
	x := openTestIndex(t, path)
	if s, id := x.Record(0); s != "evals" || id != "r0" {
		t.Fatalf("record 0: %q %q", s, id)
	}
	for _, r := range []int{-1, x.Records(), 1 << 40} {
		if s, id := x.Record(r); s != "" || id != "" {
			t.Errorf("record %d: %q %q", r, s, id)
		}
	}
}

// C3: truncating the index file while a filter uses it does not crash the
// filter (it was memory-mapped: SIGBUS); the opened index keeps working.
func TestIndexSurvivesTruncation(t *testing.T) {
	path, _ := smallIndex(t)
	x := openTestIndex(t, path)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	rule := decontamRule(x, DecontamDrop)
	if a := rule.Annotate(&shards.Document{Text: evalRecord}); a.Reason != DecontamNGram {
		t.Fatalf("after truncation: %+v", a)
	}
}

// FuzzOpenIndex: no file makes OpenIndex panic or accept an index whose
// lookups could panic; an accepted index answers lookups and Record.
func FuzzOpenIndex(f *testing.F) {
	_, good := smallIndex(f)
	f.Add(good)
	f.Add(good[:indexHeaderSize])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		// Most mutations fail the SHA-256 check; half of the inputs get a
		// correct hash so the structural checks behind it are fuzzed too.
		if len(data) > indexHeaderSize && len(data)%2 == 0 {
			data = bytes.Clone(data)
			sum := sha256.Sum256(data[indexHeaderSize:])
			copy(data[72:104], sum[:])
		}
		p := filepath.Join(dir, "f.dcx")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		x, err := OpenIndex(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer x.Close()
		rule := decontamRule(x, DecontamDrop)
		rule.Annotate(&shards.Document{Text: evalRecord})
		for r := -1; r <= x.Records(); r++ {
			x.Record(r)
		}
	})
}
