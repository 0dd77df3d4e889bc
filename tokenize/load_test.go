package tokenize

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const sample = "Hello, world! It's 2024 and we're encoding\n\n  some text: 12345 \u00e9t\u00e9 \u4e2d\u6587 <|endoftext|> done.\n"

// TestLoadGPT2Files: the GPT-2 encoder.json + vocab.bpe pair in the shared
// data is the same vocabulary as r50k_base and encodes identically.
func TestLoadGPT2Files(t *testing.T) {
	dir := filepath.Join(sharedDataDir(t), "tokenizer")
	r50k := mustGet(t, "r50k_base")
	for _, p := range []string{"gpt2_encoder.json", "gpt2_vocab.bpe"} {
		tok, err := Load(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if tok.VocabSize() != 50257 {
			t.Errorf("%s: vocab %d", p, tok.VocabSize())
		}
		if eot, ok := tok.EOT(); !ok || eot != 50256 {
			t.Errorf("%s: EOT %d %v", p, eot, ok)
		}
		if tok.RanksHash() != r50k.RanksHash() {
			t.Errorf("%s: ranks hash differs from r50k_base", p)
		}
		if got, want := tok.EncodeOrdinary(sample), r50k.EncodeOrdinary(sample); !slices.Equal(got, want) {
			t.Errorf("%s: %v, r50k %v", p, got, want)
		}
	}
	// A tiktoken file named after a built-in gets its pattern and specials.
	for _, n := range []string{"r50k_base", "p50k_base", "cl100k_base"} {
		tok, err := Load(filepath.Join(dir, n+".tiktoken"))
		if err != nil {
			t.Fatal(err)
		}
		if tok.RanksHash() != mustGet(t, n).RanksHash() {
			t.Errorf("%s.tiktoken: hash differs from the embedded %s", n, n)
		}
	}
}

// TestLoadFormatsGenerated needs no shared data: write each format from a
// built-in vocabulary, load it back, and compare.
func TestLoadFormatsGenerated(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	dir := t.TempDir()
	for _, name := range []string{"r50k_base", "cl100k_base"} {
		src := mustGet(t, name)
		// tiktoken rank file under another name: GPT-2 pattern, no specials.
		var sb strings.Builder
		for r := uint32(0); ; r++ {
			s, ok := src.ranks.bytesOf(r)
			if !ok {
				if r > src.maxID {
					break
				}
				continue
			}
			sb.WriteString(b64(s) + " " + strconv.Itoa(int(r)) + "\n")
		}
		p := filepath.Join(dir, "custom_"+name+".tiktoken")
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		// Without a pattern, a tiktoken file that is not named after a
		// built-in is refused, naming the flag.
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "--pattern") {
			t.Errorf("custom tiktoken file without a pattern: %v", err)
		}
		tok, err := LoadWith(p, Options{Pattern: name})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tok.EOT(); ok {
			t.Error("custom tiktoken file should have no specials")
		}
		if tok.Pattern() != src.Pattern() {
			t.Errorf("custom tiktoken file with pattern %s has %s", name, tok.Pattern())
		}
		if !slices.Equal(tok.EncodeOrdinary(sample), src.EncodeOrdinary(sample)) {
			t.Errorf("custom %s tiktoken encodes differently", name)
		}
		p = filepath.Join(dir, name+".tiktoken")
		os.WriteFile(p, []byte(sb.String()), 0o644)
		if tok, err = GetOrLoad(p); err != nil || tok.RanksHash() != src.RanksHash() {
			t.Errorf("%s: %v, or hash differs", p, err)
		}
	}
	if _, err := GetOrLoad("gpt2"); err != nil {
		t.Error(err)
	}
	if _, err := Get("nope"); err == nil || !strings.Contains(err.Error(), "cl100k_base") {
		t.Errorf("unknown name error: %v", err)
	}
}

func b64(s string) string { return b64enc.EncodeToString([]byte(s)) }

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := map[string]string{
		write("bad.tiktoken", "IQ== 0\nnot-base64!! 1\n"):                       "byte offset 7",
		write("short.tiktoken", "IQ== 0\n"):                                     "byte 0x00 is not a token",
		write("norank.tiktoken", "IQ==\n"):                                      "byte offset 0",
		write("tokenizer.json", `{"model": {"type": "WordLevel"}}`):             `model type "WordLevel" is not supported`,
		write("wp.json", `{"model": {"type": "WordPiece", "vocab": {"a": 0}}}`): `WordPiece unk_token "[UNK]" is not in the vocabulary`,
		write("broken.json: byte offset 10", `{"model": `):                      "broken.json",
	}
	for p, want := range cases {
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(%s) = %v, want error containing %q", filepath.Base(p), err, want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.tiktoken")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestSpecialTokens(t *testing.T) {
	tok := mustGet(t, "cl100k_base")
	text := "a<|endoftext|>b<|fim_prefix|>c"
	if _, err := tok.Encode(text, nil, nil); err == nil {
		t.Fatal("default disallowed set accepted a special token")
	} else {
		var de *DisallowedSpecialError
		if !errors.As(err, &de) || de.Token != EndOfText || de.Offset != 1 {
			t.Fatalf("error %v", err)
		}
	}
	ids, err := tok.Encode(text, []string{EndOfText}, NoSpecial)
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := tok.EOT()
	want := append(append(tok.EncodeOrdinary("a"), eot), tok.EncodeOrdinary("b<|fim_prefix|>c")...)
	if !slices.Equal(ids, want) {
		t.Fatalf("allowed endoftext only: %v, want %v", ids, want)
	}
	if _, err := tok.Encode(text, []string{EndOfText}, nil); err == nil {
		t.Fatal("fim_prefix should be disallowed by default")
	}
	ids, err = tok.Encode(text, AllSpecial, nil)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := tok.SpecialID("<|fim_prefix|>")
	if !slices.Contains(ids, fp) || !slices.Contains(ids, eot) {
		t.Fatalf("all allowed: %v", ids)
	}
	back, _ := tok.Decode(ids)
	if string(back) != text {
		t.Fatalf("decode %q", back)
	}
	if _, err := tok.Encode("x", []string{"<|nope|>"}, nil); !errors.Is(err, ErrUnknownSpecial) {
		t.Fatalf("unknown special: %v", err)
	}
	// Matches tiktoken-go on the same call.
	ref := refEncoding(t, "cl100k_base")
	got, _ := tok.Encode(sample, AllSpecial, nil)
	wantRef := ref.Encode(sample, []string{"all"}, nil)
	if len(got) != len(wantRef) {
		t.Fatalf("Encode(all) %v, tiktoken-go %v", got, wantRef)
	}
	for i := range got {
		if int(got[i]) != wantRef[i] {
			t.Fatalf("Encode(all) %v, tiktoken-go %v", got, wantRef)
		}
	}
	if _, err := tok.Decode([]uint32{1 << 30}); err == nil {
		t.Fatal("unknown id decoded")
	}
}

func TestVocabFacts(t *testing.T) {
	want := map[string]struct {
		size int
		eot  uint32
	}{"r50k_base": {50257, 50256}, "p50k_base": {50281, 50256}, "cl100k_base": {100277, 100257}, "o200k_base": {200019, 199999}}
	for name, w := range want {
		tok := mustGet(t, name)
		if tok.VocabSize() != w.size {
			t.Errorf("%s: VocabSize %d, want %d", name, tok.VocabSize(), w.size)
		}
		if eot, ok := tok.EOT(); !ok || eot != w.eot {
			t.Errorf("%s: EOT %d", name, eot)
		}
		if h := tok.RanksHash(); len(h) != 64 || h != mustGet(t, name).RanksHash() {
			t.Errorf("%s: hash %q", name, h)
		}
		// A built-in's hash is kept from its load: it must be what the
		// tables hash to now.
		fresh := *tok
		fresh.hash = ""
		if h := fresh.RanksHash(); h != tok.RanksHash() {
			t.Errorf("%s: kept hash %s, tables hash to %s", name, tok.RanksHash(), h)
		}
	}
	if mustGet(t, "r50k_base").RanksHash() == mustGet(t, "p50k_base").RanksHash() {
		t.Error("r50k and p50k hash alike")
	}
}

// TestConcurrentEncode runs many goroutines on one Tokenizer (go test -race).
func TestConcurrentEncode(t *testing.T) {
	tok := mustGet(t, "o200k_base")
	want := tok.EncodeOrdinary(strings.Repeat(sample, 20))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if !slices.Equal(tok.EncodeOrdinary(strings.Repeat(sample, 20)), want) {
					t.Error("concurrent encode differs")
					return
				}
			}
		}()
	}
	wg.Wait()
}

var b64enc = base64.StdEncoding

// TestEncodeStream: chunked encoding equals whole-text encoding.
func TestEncodeStream(t *testing.T) {
	tok := mustGet(t, "cl100k_base")
	text := strings.Repeat(sample+"Line two\n  indented\n\n\nX", 300)
	want, err := tok.Encode(text, AllSpecial, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range []int{7, 100, 4096, 1 << 20} {
		var got []uint32
		err := tok.EncodeStream(strings.NewReader(text), AllSpecial, nil, cs, func(ids []uint32) error {
			got = append(got, ids...)
			return nil
		})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("chunk %d: %v; %d ids, want %d", cs, err, len(got), len(want))
		}
	}
	err = tok.EncodeStream(strings.NewReader(text), nil, nil, 100, func([]uint32) error { return nil })
	var de *DisallowedSpecialError
	if !errors.As(err, &de) || de.Offset != strings.Index(text, EndOfText) {
		t.Fatalf("disallowed: %v", err)
	}
}

// TestLoadHFFromGPT2: a Hugging Face tokenizer.json carrying GPT-2's
// vocabulary (merges as "a b" strings, ByteLevel pre-tokeniser), built from
// the shared encoder.json and vocab.bpe, encodes exactly as r50k_base.
func TestLoadHFFromGPT2(t *testing.T) {
	dir := filepath.Join(sharedDataDir(t), "tokenizer")
	enc, err := os.ReadFile(filepath.Join(dir, "gpt2_encoder.json"))
	if err != nil {
		t.Fatal(err)
	}
	bpe, err := os.ReadFile(filepath.Join(dir, "gpt2_vocab.bpe"))
	if err != nil {
		t.Fatal(err)
	}
	var merges []string
	for _, l := range strings.Split(string(bpe), "\n") {
		if l != "" && !strings.HasPrefix(l, "#version") {
			merges = append(merges, l)
		}
	}
	mj, _ := json.Marshal(merges)
	doc := `{"version": "1.0", "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": true}],
	"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
	"model": {"type": "BPE", "vocab": ` + string(enc) + `, "merges": ` + string(mj) + `}}`
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	r50k := mustGet(t, "r50k_base")
	if tok.RanksHash() != r50k.RanksHash() {
		t.Error("HF GPT-2 vocabulary hashes differently from r50k_base")
	}
	text, _ := os.ReadFile(filepath.Join(dir, "cs336_address.txt"))
	if !slices.Equal(tok.EncodeOrdinary(string(text)), r50k.EncodeOrdinary(string(text))) {
		t.Error("HF GPT-2 encodes differently from r50k_base")
	}
}

// TestAppendEncodeOrdinaryAllocs: the hot path allocates nothing when dst
// has room.
func TestAppendEncodeOrdinaryAllocs(t *testing.T) {
	tok := mustGet(t, "cl100k_base")
	text := strings.Repeat(sample, 10)
	buf := make([]uint32, 0, 4096)
	if n := testing.AllocsPerRun(20, func() { buf = tok.AppendEncodeOrdinary(buf[:0], text) }); n != 0 {
		t.Errorf("AppendEncodeOrdinary: %v allocations per run", n)
	}
}

// TestEncodeManySpecials: many allowed specials in a long text, one of the
// allowed set absent, encode in linear time and correctly.
func TestEncodeManySpecials(t *testing.T) {
	tok := mustGet(t, "cl100k_base")
	eot, _ := tok.EOT()
	unit := tok.EncodeOrdinary("ab c")
	var want []uint32
	for i := 0; i < 20000; i++ {
		want = append(append(want, unit...), eot)
	}
	got, err := tok.Encode(strings.Repeat("ab c"+EndOfText, 20000), AllSpecial, nil)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %d ids (%v), want %d", len(got), err, len(want))
	}
}
