package tokenize

import (
	"encoding/base64"
	"encoding/binary"
	"os"
	"strings"
	"testing"
)

// charsmapB64 rebuilds the precompiled charsmap blob of uni4k.model (its
// nmt_nfkc rule) as a tokenizer.json carries it: base64 of the trie size,
// the trie units and the replacement strings.
func charsmapB64(t testing.TB) string {
	t.Helper()
	src, err := Load(spmModelPath("uni4k"))
	if err != nil {
		t.Fatal(err)
	}
	n := src.pipe.spm.norm
	if len(n.trie) == 0 {
		t.Fatal("uni4k.model has no charsmap")
	}
	blob := binary.LittleEndian.AppendUint32(nil, uint32(4*len(n.trie)))
	for _, u := range n.trie {
		blob = binary.LittleEndian.AppendUint32(blob, u)
	}
	blob = append(blob, n.normalized...)
	return base64.StdEncoding.EncodeToString(blob)
}

// precompiledCases are texts where the charsmap, the grapheme clusters and
// the library's shortest-key-replaces-the-cluster rule matter: fullwidth
// forms, ligatures, compatibility characters, combining marks on each.
func precompiledCases() []string {
	return []string{
		"ＡＢＣ ｆｕｌｌ－ｗｉｄｔｈ　ｓｐａｃｅ！ １２３", "ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ ﬆ oﬃce", "① ② ⑳ ㈱ ㍿ ㎏ ㎞ ℡ ™ № Ⅻ ⅷ",
		"x² y³ H₂O ½ ¾ ⁄ µ Å K Ω", "ｶﾞｷﾞ ﾊﾟﾋﾟ ｱｲｳ ﾞ ﾟ", "Ａ\u0301 ﬁ\u0301 ﬀ\u0308 ①\u0301 ｶ\u0301 ½\u0327",
		"e\u0301 e\u0301\u0301 a\u0308\u0304 n\u0303 \u00e9\u0301 o\u031b\u0323 A\u030a", "ㄱㅏ \u1100\u1161\u11a8 한\u1161",
		"line\r\nbreak \r\n\r\n x\u0085y \u2028 \u00a0\u2003\u2009 tabs\t\tend", "keycap 1\u20e3 #\u20e3 ❤\ufe0f ☺\ufe0e 🇫🇷🇩🇪 👍🏽",
		"\u0915\u094d\u0937 \u0915\u093f \u0e01\u0e33 \u0e4d\u0e32 \u0ec8\u0eb3 \u1e9b\u0323", "ǅ ǆ Ǳ ĳ Ŀ ŉ ſt ｰ ･ ﹏ ︵ ﹙",
		"control \x01\x02\x1f\x7f soft\u00adhyphen zero\u200bwidth \ufeff bom \u200e\u200f",
		"ℌℑℜ 𝐀𝐁𝐂 𝔄𝔅 𝟎𝟏𝟐 ⓐⓑ ⒜ ⑴ ㊀ ㋀ 〒 〶 ︙",
	}
}

// TestHFPrecompiledReference compares smelt with Hugging Face tokenizers on
// Unigram tokenizer.json files whose normalizer is uni4k.model's nmt_nfkc
// charsmap as a Precompiled normalizer: alone, and as the library's
// SentencePiece converter lays it out (then Strip right and a Replace of
// space runs, Metaspace). The hard cases, the charsmap cases and 300 real
// documents (5,000 in the thoroughness run, 40 under -race).
func TestHFPrecompiledReference(t *testing.T) {
	node := hfNode(t)
	cm := charsmapB64(t)
	dir := t.TempDir()
	n := 300
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 5000
	} else if raceEnabled {
		n = 40
	}
	docs := realDocs(t, n)
	pc := `{"type":"Precompiled","precompiled_charsmap":"` + cm + `"}`
	meta := `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`
	variants := []struct{ name, norm string }{
		{"precompiled", pc},
		{"converter", `{"type":"Sequence","normalizers":[` + pc + `,{"type":"Strip","strip_left":false,"strip_right":true},` +
			`{"type":"Replace","pattern":{"Regex":" {2,}"},"content":"▁"}]}`},
	}
	if raceEnabled {
		variants = variants[1:] // the converter layout holds the other
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			path := unigramJSON(t, dir, v.name, v.norm, meta, false)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			texts := append(append(hardCases(), precompiledCases()...), docs...)
			for i, s := range texts {
				texts[i] = asRunes(s)
			}
			ref := hfRefIDsAt(t, node, path, texts)
			bad := 0
			for i, text := range texts {
				got, err := tok.Encode(text, AllSpecial, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d := firstDiff(got, ref[i]); d < len(got) || d < len(ref[i]) {
					bad++
					if bad <= 5 {
						t.Errorf("text %d %q: first difference at id %d:\n got %v\nwant %v", i, clipText(text, d), d, window(got, d), window(ref[i], d))
					}
				}
			}
			if bad > 0 {
				t.Errorf("%d of %d texts differ from Hugging Face tokenizers", bad, len(texts))
			}
			t.Logf("%d texts equal", len(texts)-bad)
		})
	}
}

// TestPrecompiledRules pins the library's rule on the charsmap directly:
// a short cluster takes the replacement of its shortest matching key and
// loses the rest (the fullwidth A keeps no accent), a long one is rewritten
// char by char, ASCII passes untouched.
func TestPrecompiledRules(t *testing.T) {
	p, err := newPrecompiled(charsmapB64(t))
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"plain ascii text": "plain ascii text",
		"Ａ\u0301":          "A",
		"ﬁ":                "fi",
		"ＡＢＣ":              "ABC",
		"①":                "1",
		"x\u0301":          "x\u0301",
	} {
		if got := p.normalize(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if _, err := newPrecompiled("!!notbase64"); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Errorf("bad base64: %v", err)
	}
	if _, err := newPrecompiled(base64.StdEncoding.EncodeToString([]byte{200, 0, 0, 0, 1})); err == nil || !strings.Contains(err.Error(), "trie size") {
		t.Errorf("bad trie size: %v", err)
	}
}
