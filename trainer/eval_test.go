package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// shakespeare returns Tiny Shakespeare (skipping when the shared data is
// absent).
func shakespeare(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "clean_text", "tinyshakespeare.txt"))
	if err != nil {
		t.Skipf("real data not present (%v)", err)
	}
	return string(raw)
}

// evalTokenizer trains a byte-level BPE of vocab ids on text and writes it
// to dir, returning its path.
func evalTokenizer(t testing.TB, dir, text string, vocab int) (string, *tokenize.Tokenizer) {
	t.Helper()
	tr, err := tokenize.Train(context.Background(), []io.Reader{strings.NewReader(text)},
		tokenize.TrainOptions{VocabSize: vocab, Specials: []string{tokenize.EndOfText}, Pattern: tokenize.PatternGPT2})
	if err != nil {
		t.Fatal(err)
	}
	js, err := tr.MarshalHF()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("bpe%d.json", vocab))
	if err := os.WriteFile(path, js, 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenize.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, tok
}

// writeTextShards tokenizes paragraphs as the tokenize stage does (ordinary
// tokens, then end-of-text) into a token-shard directory.
func writeTextShards(t *testing.T, dir string, tok *tokenize.Tokenizer, source string, paras []string) {
	t.Helper()
	eot, _ := tok.EOT()
	info := shards.TokenizerInfo{Name: tok.Name(), RanksHash: tok.RanksHash(), VocabSize: tok.VocabSize(), EOT: eot}
	w, err := shards.NewTokenWriter(dir, shards.TokenWriterOptions{Tokenizer: info, TargetBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range paras {
		if err := w.Write(fmt.Sprintf("%s-%d", source, i), source, append(tok.EncodeOrdinary(p), eot)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &shards.Manifest{Kind: shards.KindTokens, Stage: "test", Shards: w.Shards(), Totals: shards.SumShards(w.Shards()), Tokenizer: &info}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

// randomCheckpoint writes a freshly initialised model that embeds tokPath's
// tokenizer.
func randomCheckpoint(t testing.TB, dir string, cfg Config, tokPath string) {
	t.Helper()
	tok, err := tokenize.Load(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	hash, file, data, err := TokenizerInfo(tok, tokPath)
	if err != nil {
		t.Fatal(err)
	}
	eot, _ := tok.EOT()
	cfg.Vocab = tok.VocabSize()
	m, err := NewModel(cfg, NewCPU(1), 7, 1, cfg.Context)
	if err != nil {
		t.Fatal(err)
	}
	ck := &Checkpoint{Config: cfg, Tokenizer: tok.Name(), EOT: eot, TokenizerHash: hash, TokenizerFile: file, TokenizerData: data, Params: m.Params.Flat}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SaveCheckpoint(filepath.Join(dir, CheckpointFile), ck); err != nil {
		t.Fatal(err)
	}
}

// TestEvalWindows: every target of a document is scored exactly once, and
// each window past the first gives it at least T-stride tokens of context.
func TestEvalWindows(t *testing.T) {
	for _, tc := range []struct{ n, T, stride int }{{1, 8, 4}, {8, 8, 4}, {9, 8, 4}, {30, 8, 4}, {30, 8, 8}, {31, 8, 3}, {100, 16, 1}} {
		seq := make([]uint32, tc.n+1)
		for i := range seq {
			seq[i] = uint32(i)
		}
		seen := make([]int, tc.n+1)
		for k, w := range windows(0, seq, tc.T, tc.stride) {
			L := len(w.seq) - 1
			if L > tc.T || L <= 0 {
				t.Fatalf("%+v: window %d has %d inputs", tc, k, L)
			}
			for j := w.skip; j < L; j++ {
				pos := int(w.seq[j+1])
				seen[pos]++
				if k > 0 && j < tc.T-tc.stride {
					t.Fatalf("%+v: window %d scores position %d with only %d tokens of context", tc, k, pos, j+1)
				}
			}
		}
		for pos := 1; pos <= tc.n; pos++ {
			if seen[pos] != 1 {
				t.Fatalf("%+v: target %d scored %d times", tc, pos, seen[pos])
			}
		}
	}
}

// TestEvaluateIndependentOfWorkers scores Shakespeare (as a text file, a
// JSONL file and token shards of the same tokenizer) with several worker
// counts and batch sizes: the rows are identical, bit for bit; the three
// forms of the same text score the same; bits per byte is the summed nats
// over the text's bytes.
func TestEvaluateIndependentOfWorkers(t *testing.T) {
	text := shakespeare(t)
	dir := t.TempDir()
	tokPath, tok := evalTokenizer(t, dir, text[:200<<10], 300)
	ckdir := filepath.Join(dir, "run")
	randomCheckpoint(t, ckdir, Config{Layers: 1, Heads: 2, Width: 16, Context: 16}, tokPath)

	paras := strings.Split(text[300<<10:312<<10], "\n\n")
	var kept []string
	for _, p := range paras {
		if p != "" {
			kept = append(kept, p)
		}
	}
	txt := filepath.Join(dir, "one.txt")
	os.WriteFile(txt, []byte(kept[0]+"\n\n"+kept[1]), 0o644)
	jl := filepath.Join(dir, "held.jsonl")
	var b strings.Builder
	for _, p := range kept {
		js, _ := json.Marshal(map[string]string{"text": p, "source": "play"})
		b.Write(js)
		b.WriteByte('\n')
	}
	os.WriteFile(jl, []byte(b.String()), 0o644)
	tokDir := filepath.Join(dir, "tokens")
	os.MkdirAll(tokDir, 0o755)
	writeTextShards(t, tokDir, tok, "play", kept)

	sets := []EvalSet{{Name: "jsonl", Paths: []string{jl}}, {Name: "tokens", Paths: []string{tokDir}}, {Name: "text", Paths: []string{txt}}}
	var first []EvalResult
	for _, o := range []EvalOptions{{Workers: 1, BatchSize: 1}, {Workers: 3, BatchSize: 7}, {Workers: 2}} {
		got, err := Evaluate(context.Background(), ckdir, sets, o)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(first) {
			t.Fatalf("workers %d batch %d changed the result:\n%v\n%v", o.Workers, o.BatchSize, got, first)
		}
	}
	// jsonl: whole + source "play"; tokens: whole + "play"; text: whole + "one".
	if len(first) != 6 {
		t.Fatalf("rows: %+v", first)
	}
	js, tk, tx := first[0], first[2], first[4]
	if js.Tokens != tk.Tokens || js.Nats != tk.Nats || js.Bytes != tk.Bytes || js.Docs != int64(len(kept)) {
		t.Fatalf("the same text as JSONL and as token shards scores differently:\n%+v\n%+v", js, tk)
	}
	var bytes int64
	for _, p := range kept {
		bytes += int64(len(p))
	}
	if js.Bytes != bytes || tx.Bytes != int64(len(kept[0])+2+len(kept[1])) {
		t.Fatalf("bytes %d and %d, want %d and %d", js.Bytes, tx.Bytes, bytes, len(kept[0])+2+len(kept[1]))
	}
	if want := js.Nats / math.Ln2 / float64(js.Bytes); math.Abs(js.BitsPerByte-want) > 1e-12 || js.Source != "" || first[1].Source != "play" {
		t.Fatalf("row %+v", js)
	}
	// An untrained model is near ln(vocab) nats per token.
	if lv := math.Log(float64(tok.VocabSize())); math.Abs(js.LossNats-lv) > 0.5 {
		t.Fatalf("untrained loss %.3f, ln(vocab) %.3f", js.LossNats, lv)
	}
	// Another stride scores the same tokens (with other contexts).
	s8, err := Evaluate(context.Background(), ckdir, sets[:1], EvalOptions{Stride: 16})
	if err != nil {
		t.Fatal(err)
	}
	if s8[0].Tokens != js.Tokens || s8[0].Nats == js.Nats {
		t.Fatalf("stride 16: %+v, stride 8: %+v", s8[0], js)
	}
}

// BenchmarkEvaluate scores 64 KB of Shakespeare with the small preset
// (4 layers, width 256, context 256) and a 1,000-id BPE, untrained: the
// speed of smelt eval, in scored tokens per second.
func BenchmarkEvaluate(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "shared", "data", "clean_text", "tinyshakespeare.txt"))
	if err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	tokPath, _ := evalTokenizer(b, dir, string(raw[:100<<10]), 1000)
	randomCheckpoint(b, filepath.Join(dir, "run"), Presets["small"], tokPath)
	held := filepath.Join(dir, "held.txt")
	os.WriteFile(held, raw[200<<10:264<<10], 0o644)
	var tokens int64
	b.ResetTimer()
	for range b.N {
		rows, err := Evaluate(context.Background(), filepath.Join(dir, "run"), []EvalSet{{Name: "held", Paths: []string{held}}}, EvalOptions{})
		if err != nil {
			b.Fatal(err)
		}
		tokens += rows[0].Tokens
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
