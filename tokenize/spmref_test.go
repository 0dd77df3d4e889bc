package tokenize

import (
	"bufio"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The SentencePiece reference: the library's Python binding from Debian
// (python3-sentencepiece 0.1.97) on models spm_train made from real text
// (testdata/spm; see its README for the commands).

const spmDir = "testdata/spm"

var spmModels = []string{"bpe4k", "uni4k"}

func spmModelPath(name string) string { return filepath.Join(spmDir, name+".model") }

// spmPython returns a Python that imports sentencepiece, or skips.
func spmPython(t testing.TB) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		p, err := exec.LookPath(py)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import sentencepiece").Run() == nil {
			return p
		}
	}
	t.Skip("the SentencePiece reference is absent: apt-get install sentencepiece python3-sentencepiece")
	return ""
}

func writeB64(t testing.TB, texts []string) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "texts.b64")
	var b strings.Builder
	for _, s := range texts {
		b.WriteByte('b')
		b.WriteString(base64.StdEncoding.EncodeToString([]byte(s)))
		b.WriteByte('\n')
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return in
}

// spmRefIDs encodes texts with the SentencePiece library (raw bytes, so
// invalid UTF-8 reaches it as is).
func spmRefIDs(t testing.TB, py, model string, texts []string) [][]uint32 {
	t.Helper()
	in := writeB64(t, texts)
	out := filepath.Join(t.TempDir(), "ids.txt")
	if msg, err := exec.Command(py, filepath.Join(spmDir, "ref.py"), "ids", model, in, out).CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var ids [][]uint32
	for sc.Scan() {
		var row []uint32
		for _, w := range strings.Fields(sc.Text()) {
			v, err := strconv.ParseUint(w, 10, 32)
			if err != nil {
				t.Fatal(err)
			}
			row = append(row, uint32(v))
		}
		ids = append(ids, row)
	}
	if len(ids) != len(texts) {
		t.Fatalf("reference returned %d results for %d texts", len(ids), len(texts))
	}
	return ids
}

func spmHardCases() []string {
	return append(hardCases(),
		"trailing spaces   ", "   leading", "\t tab \t mix \t", "a\u00a0\u00a0b", "\u200b", "\x00",
		"ｶﾀｶﾅ ＡＢＣ １２３", "㍻ ㌔ ℡ ™ Ⅳ", "x\u0300\u0301\u0302\u0303\u0304\u0305\u0306", "\u0640\u0640\u0640",
		"𝐀𝐁𝐂 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "🏳️‍🌈 🧑🏿‍🦱", "ʻOkina Hawaiʻi", "ǈ ǋ ǲ", "Ꙭ ꙮ ᚠᚢᚦ 𓀀 𐍈", "ᄀᄁ 한글 ㄱ",
	)
}

func TestSentencePieceReference(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	py := spmPython(t)
	n := 600
	if testing.Short() || raceEnabled {
		n = 150
	}
	if os.Getenv("SMELT_THOROUGH") == "1" {
		n = 5000
	}
	texts := append(spmHardCases(), realDocs(t, n)...)
	for _, name := range spmModels {
		t.Run(name, func(t *testing.T) {
			path := spmModelPath(name)
			tok, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			ref := spmRefIDs(t, py, path, texts)
			bad := 0
			for i, s := range texts {
				got := tok.EncodeOrdinary(s)
				if !slices.Equal(got, ref[i]) {
					d := firstDiff(got, ref[i])
					bad++
					if bad <= 5 {
						t.Errorf("%s: text %d %q: first difference at %d: got %v, reference %v",
							name, i, clipText(s, 80), d, window(got, d), window(ref[i], d))
					}
				}
			}
			if bad > 0 {
				t.Fatalf("%s: %d of %d texts differ", name, bad, len(texts))
			}
			t.Logf("%s: %d texts, every id equals SentencePiece's", name, len(texts))
		})
	}
}

// TestSentencePieceEncodeCLI compares with spm_encode --output_format=id,
// which reads one sentence a line, on every line of the real documents.
func TestSentencePieceEncodeCLI(t *testing.T) {
	bin, err := exec.LookPath("spm_encode")
	if err != nil {
		t.Skip("spm_encode is absent: apt-get install sentencepiece")
	}
	var lines []string
	limit := 8000 // lines; every line of the documents in a thoroughness run
	if raceEnabled {
		limit = 2000
	}
	if os.Getenv("SMELT_THOROUGH") == "1" {
		limit = 1 << 30
	}
	for _, d := range append(spmHardCases(), realDocs(t, 300)...) {
		for _, l := range strings.Split(d, "\n") {
			if l != "" && len(lines) < limit {
				lines = append(lines, l)
			}
		}
	}
	in := filepath.Join(t.TempDir(), "lines.txt")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range spmModels {
		tok, err := Load(spmModelPath(name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--model", spmModelPath(name), "--output_format=id", "--input", in).Output()
		if err != nil {
			t.Fatalf("spm_encode: %v", err)
		}
		got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(got) != len(lines) {
			t.Fatalf("%s: spm_encode gave %d lines for %d", name, len(got), len(lines))
		}
		bad := 0
		for i, l := range lines {
			var b strings.Builder
			for j, id := range tok.EncodeOrdinary(l) {
				if j > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(strconv.FormatUint(uint64(id), 10))
			}
			if b.String() != got[i] {
				if bad++; bad <= 5 {
					t.Errorf("%s: line %q: got %s, spm_encode %s", name, clipText(l, 80), b.String(), got[i])
				}
			}
		}
		if bad > 0 {
			t.Fatalf("%s: %d of %d lines differ", name, bad, len(lines))
		}
		t.Logf("%s: %d lines equal spm_encode's", name, len(lines))
	}
}

// TestSentencePieceVariants trains small models with the other options
// (normalization rules identity, nfkc, nmt_nfkc_cf; user-defined symbols;
// no dummy prefix; extra whitespace kept; byte_fallback on Unigram) with
// spm_train into a temp dir and compares with the library.
func TestSentencePieceVariants(t *testing.T) {
	if raceEnabled && os.Getenv("SMELT_THOROUGH") != "1" {
		t.Skip("spm_train and the reference under -race take minutes: run without -race or with SMELT_THOROUGH=1")
	}
	py := spmPython(t)
	train, err := exec.LookPath("spm_train")
	if err != nil {
		t.Skip("spm_train is absent: apt-get install sentencepiece")
	}
	dir := t.TempDir()
	docs := realDocs(t, 400)
	corpus := filepath.Join(dir, "corpus.txt")
	text := strings.Join(docs[:200], "\n")
	text = text[:min(len(text), 300<<10)]
	if err := os.WriteFile(corpus, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	texts := append(spmHardCases(), "<tag>foo<tag> food  <tag>", "foo\tfoo  foo")
	texts = append(texts, docs[200:300]...)
	variants := [][]string{
		{"--model_type=unigram", "--normalization_rule_name=identity", "--user_defined_symbols=<tag>,foo", "--byte_fallback=true", "--remove_extra_whitespaces=false"},
		{"--model_type=bpe", "--normalization_rule_name=nmt_nfkc_cf", "--add_dummy_prefix=false", "--user_defined_symbols=<tag>,foo"},
		{"--model_type=unigram", "--normalization_rule_name=nfkc", "--character_coverage=0.98"},
		{"--model_type=bpe", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false", "--byte_fallback=true"},
	}
	for i, v := range variants {
		prefix := filepath.Join(dir, "v"+strconv.Itoa(i))
		args := append([]string{"--input=" + corpus, "--model_prefix=" + prefix, "--vocab_size=1000", "--num_threads=1"}, v...)
		if msg, err := exec.Command(train, args...).CombinedOutput(); err != nil {
			t.Fatalf("spm_train %v: %v\n%s", v, err, msg)
		}
		tok, err := Load(prefix + ".model")
		if err != nil {
			t.Fatal(err)
		}
		ref := spmRefIDs(t, py, prefix+".model", texts)
		bad := 0
		for j, s := range texts {
			if got := tok.EncodeOrdinary(s); !slices.Equal(got, ref[j]) {
				d := firstDiff(got, ref[j])
				if bad++; bad <= 3 {
					t.Errorf("%v: text %q: first difference at %d: got %v, reference %v", v, clipText(s, 80), d, window(got, d), window(ref[j], d))
				}
			}
		}
		if bad > 0 {
			t.Errorf("%v: %d of %d texts differ", v, bad, len(texts))
		}
	}
}
