package trainer

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// EvalSet is one named evaluation set: token-shard directories, a mix
// file, document-shard directories, or text / JSONL files (tokenized with
// the checkpoint's own tokenizer).
type EvalSet struct {
	Name  string   `json:"name"`
	Paths []string `json:"paths"`
	// HeldOut, when > 0, scores only the data a run holding out this
	// fraction validates on: Paths must then be one mix file or token-shard
	// directories, split exactly as the loader splits them at SeqLen (see
	// shards.Mix.HeldOut). MaxTokens > 0 caps each source at the prefix of
	// its held-out pieces that reaches that many tokens.
	HeldOut   float64 `json:"held_out,omitempty"`
	SeqLen    int     `json:"seq_len,omitempty"`
	MaxTokens int64   `json:"max_tokens,omitempty"`
}

// EvalOptions: Stride 0 means the documented default; Workers/BatchSize
// never change the result.
type EvalOptions struct {
	// Stride is how far consecutive windows of a long document move
	// (0: half the model's context). Every token after a document's first
	// window is scored with at least context-Stride tokens before it.
	Stride int
	// Workers is the number of windows scored at once (0: GOMAXPROCS).
	Workers int
	// BatchSize is the number of windows read ahead per worker (0: 16).
	BatchSize int
}

// EvalResult is one row: a whole set (Source == "") or one source inside it.
type EvalResult struct {
	Set    string `json:"set"`
	Source string `json:"source,omitempty"`
	// Docs is the number of documents (or held-out pieces) scored.
	Docs int64 `json:"docs"`
	// Tokens is the number of tokens predicted (each document's tokens and
	// its end-of-text id); Bytes the UTF-8 bytes of their text (0 when the
	// checkpoint's tokenizer is unknown).
	Tokens int64 `json:"tokens"`
	Bytes  int64 `json:"bytes"`
	// LossNats is the mean loss in nats per token, Perplexity its exp,
	// BitsPerByte the summed nats / ln 2 / Bytes (0 when Bytes is 0).
	LossNats    float64 `json:"loss_nats"`
	Perplexity  float64 `json:"perplexity"`
	BitsPerByte float64 `json:"bits_per_byte"`
	// Nats is the summed loss.
	Nats float64 `json:"nats"`
}

// Evaluate scores the checkpoint in dir on each set.
//
// Every document is scored on its own, as the model saw documents in
// training: preceded by the end-of-text id and followed by it, every token
// after that first one predicted once. A document longer than the model's
// context is scored in windows of the context: the first window scores all
// its tokens; each next window ends Stride tokens further on and scores only
// the tokens not yet scored (the last window ends at the document's end).
// Each window runs alone, batch of one, and the sums run in document and
// window order in float64, so the result is the same for any Workers and
// BatchSize.
func Evaluate(ctx context.Context, dir string, sets []EvalSet, opt EvalOptions) ([]EvalResult, error) {
	m, ck, err := LoadModel(dir, NewCPU(1))
	if err != nil {
		return nil, err
	}
	ev, err := newEvaluator(m, ck, opt)
	if err != nil {
		return nil, err
	}
	var out []EvalResult
	for _, s := range sets {
		rows, err := ev.scoreSet(ctx, s, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	return out, nil
}

// evaluator scores documents with a model's parameters on replicas of one
// sequence each.
type evaluator struct {
	cfg      Config
	params   *Tensors
	be       *CPU
	opt      EvalOptions
	tok      *tokenize.Tokenizer // nil: token data only
	tokHash  string
	eot      uint32
	tokBytes []int32 // UTF-8 bytes per id; nil when unknown
	replicas []*Model
}

// newEvaluator prepares to score with m's parameters (shared, read only
// while scoring) and ck's tokenizer.
func newEvaluator(m *Model, ck *Checkpoint, opt EvalOptions) (*evaluator, error) {
	T := m.Config.Context
	if opt.Stride == 0 {
		opt.Stride = max(1, T/2)
	}
	if opt.Stride < 0 || opt.Stride > T {
		return nil, fmt.Errorf("trainer: eval stride %d must be in [1, context %d]", opt.Stride, T)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	if opt.BatchSize <= 0 {
		opt.BatchSize = 16
	}
	be, ok := m.be.(*CPU)
	if !ok {
		be = NewCPU(1)
	}
	ev := &evaluator{cfg: m.Config, params: m.Params, be: &CPU{k: be.k, workers: 1}, opt: opt,
		tokHash: ck.TokenizerHash, eot: ck.EOT}
	tok, err := ck.LoadTokenizer()
	switch {
	case err == nil:
		ev.tok = tok
		ev.tokBytes = tokenBytes(tok, m.Config.Vocab)
	case ck.Tokenizer == "bytes" && m.Config.Vocab == 256:
		ev.tokBytes = make([]int32, 256)
		for i := range ev.tokBytes {
			ev.tokBytes[i] = 1
		}
	case errors.Is(err, ErrNoTokenizer):
		// Token data can still be scored; bytes are unknown.
	default:
		return nil, err
	}
	return ev, nil
}

// tokenBytes is the length of each id's bytes; special tokens (the
// end-of-text id) stand for no text and count 0.
func tokenBytes(tok *tokenize.Tokenizer, vocab int) []int32 {
	out := make([]int32, vocab)
	special := map[uint32]bool{}
	for _, id := range tok.Specials() {
		special[id] = true
	}
	for id := range out {
		if special[uint32(id)] {
			continue
		}
		if b, ok := tok.TokenBytes(uint32(id)); ok {
			out[id] = int32(len(b))
		}
	}
	return out
}

// evalDoc is one document to score: its tokens, ending with the
// end-of-text id.
type evalDoc struct {
	source string
	toks   []uint32
}

// window is one forward pass: seq holds its inputs and one more token (the
// last target), and the first skip targets were scored by an earlier
// window.
type window struct {
	doc  int
	seq  []uint32
	skip int
}

// accum sums a set's or a source's scores.
type accum struct {
	docs, tokens, bytes int64
	nats                float64
}

func (a accum) result(set, source string) EvalResult {
	r := EvalResult{Set: set, Source: source, Docs: a.docs, Tokens: a.tokens, Bytes: a.bytes, Nats: a.nats}
	if a.tokens > 0 {
		r.LossNats = a.nats / float64(a.tokens)
		r.Perplexity = math.Exp(r.LossNats)
	}
	if a.bytes > 0 {
		r.BitsPerByte = a.nats / math.Ln2 / float64(a.bytes)
	}
	return r
}

// scoreSet scores one set, from docs when it is not nil (a set held in
// memory), else from its paths. It returns the whole set's row, then one
// per source in order of first appearance.
func (ev *evaluator) scoreSet(ctx context.Context, set EvalSet, docs []evalDoc) ([]EvalResult, error) {
	var total accum
	bySrc := map[string]*accum{}
	var order []string
	var block []evalDoc
	flush := func() error {
		nats, err := ev.scoreDocs(ctx, block)
		if err != nil {
			return fmt.Errorf("trainer: eval set %q: %w", set.Name, err)
		}
		for i, d := range block {
			a := bySrc[d.source]
			if a == nil {
				a = &accum{}
				bySrc[d.source] = a
				order = append(order, d.source)
			}
			var nb int64
			if ev.tokBytes != nil {
				for _, t := range d.toks {
					nb += int64(ev.tokBytes[t])
				}
			}
			for _, x := range []*accum{a, &total} {
				x.docs++
				x.tokens += int64(len(d.toks))
				x.bytes += nb
				x.nats += nats[i]
			}
		}
		block = block[:0]
		return nil
	}
	if docs != nil {
		block = docs
		if err := flush(); err != nil {
			return nil, err
		}
	} else {
		// Read ahead a bounded number of tokens, then score them in parallel.
		limit := int64(ev.opt.Workers*ev.opt.BatchSize) * int64(ev.cfg.Context)
		var pending int64
		err := ev.forEachDoc(set, func(d evalDoc) error {
			d.toks = append([]uint32(nil), d.toks...)
			block = append(block, d)
			if pending += int64(len(d.toks)); pending >= limit {
				pending = 0
				return flush()
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if total.tokens == 0 {
		return nil, fmt.Errorf("trainer: eval set %q has no tokens to score", set.Name)
	}
	out := []EvalResult{total.result(set.Name, "")}
	for _, s := range order {
		out = append(out, bySrc[s].result(set.Name, s))
	}
	return out, nil
}

// windows cuts a document of n tokens (after its leading end-of-text id)
// into forward passes of at most T inputs.
func windows(doc int, seq []uint32, T, stride int) []window {
	n := len(seq) - 1 // targets
	end := min(T, n)
	out := []window{{doc: doc, seq: seq[:end+1]}}
	for prev := end; prev < n; prev = end {
		end = min(prev+stride, n)
		start := end - T
		out = append(out, window{doc: doc, seq: seq[start : end+1], skip: prev - start})
	}
	return out
}

// scoreDocs returns each document's summed loss in nats.
func (ev *evaluator) scoreDocs(ctx context.Context, docs []evalDoc) ([]float64, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	T := ev.cfg.Context
	var wins []window
	for i, d := range docs {
		for _, t := range d.toks {
			if int(t) >= ev.cfg.Vocab {
				return nil, fmt.Errorf("document %d of source %q: token %d outside the model's vocabulary of %d", i, d.source, t, ev.cfg.Vocab)
			}
		}
		seq := make([]uint32, 0, len(d.toks)+1)
		seq = append(append(seq, ev.eot), d.toks...)
		wins = append(wins, windows(i, seq, T, ev.opt.Stride)...)
	}
	workers := min(ev.opt.Workers, len(wins))
	for len(ev.replicas) < workers {
		r := &Model{Config: ev.cfg, Params: ev.params, be: ev.be, maxB: 1, maxT: T}
		r.alloc()
		ev.replicas = append(ev.replicas, r)
	}
	got := make([]float64, len(wins))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := ev.replicas[w]
			for {
				i := int(next.Add(1) - 1)
				if i >= len(wins) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				win := wins[i]
				L := len(win.seq) - 1
				if _, err := m.Forward(win.seq[:L], win.seq[1:], 1, L); err != nil {
					errs[w] = err
					return
				}
				var s float64
				for _, l := range m.a.losses[win.skip:L] {
					s += float64(l)
				}
				got[i] = s
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]float64, len(docs))
	for i, w := range wins {
		out[w.doc] += got[i]
	}
	return out, nil
}

// loadDocs reads a set's documents into memory, for a trainer that scores
// them again and again.
func (ev *evaluator) loadDocs(set EvalSet) ([]evalDoc, error) {
	var docs []evalDoc
	err := ev.forEachDoc(set, func(d evalDoc) error {
		d.toks = append([]uint32(nil), d.toks...)
		docs = append(docs, d)
		return nil
	})
	if err == nil && len(docs) == 0 {
		err = fmt.Errorf("trainer: eval set %q has no documents", set.Name)
	}
	return docs, err
}

// forEachDoc calls fn with every document of the set's paths, in order;
// d.toks is only valid during fn.
func (ev *evaluator) forEachDoc(set EvalSet, fn func(evalDoc) error) error {
	if len(set.Paths) == 0 {
		return fmt.Errorf("trainer: eval set %q has no data", set.Name)
	}
	if set.HeldOut > 0 {
		mix, err := ev.openMix(set.Paths)
		if err != nil {
			return fmt.Errorf("trainer: eval set %q: %w", set.Name, err)
		}
		seqLen := set.SeqLen
		if seqLen <= 0 {
			seqLen = ev.cfg.Context
		}
		return mix.HeldOut(set.HeldOut, seqLen, set.MaxTokens, func(src *shards.MixSource, _ string, toks []uint32) error {
			return fn(evalDoc{source: src.Name, toks: toks})
		})
	}
	for _, p := range set.Paths {
		if err := ev.forEachPathDoc(p, fn); err != nil {
			return fmt.Errorf("trainer: eval set %q: %w", set.Name, err)
		}
	}
	return nil
}

// openMix opens token data (one mix file, or token-shard directories as
// sources named after them) and checks that its tokenizer is the model's.
func (ev *evaluator) openMix(paths []string) (*shards.Mix, error) {
	var mix *shards.Mix
	var err error
	if len(paths) == 1 && !isDir(paths[0]) {
		mix, err = shards.LoadMix(paths[0])
	} else {
		mix, err = mixFromDirs(paths)
	}
	if err != nil {
		return nil, err
	}
	if err := ev.checkTokens(mix.TokenizerInfo(), mix.Path); err != nil {
		return nil, err
	}
	return mix, nil
}

// mixFromDirs opens token-shard directories as one mix with equal weights.
func mixFromDirs(dirs []string) (*shards.Mix, error) {
	if len(dirs) == 1 {
		return shards.OpenMixDir(dirs[0])
	}
	var b strings.Builder
	b.WriteString("sources:\n")
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - {name: %q, path: %q, weight: 1}\n", filepath.Base(filepath.Clean(d)), abs)
	}
	f, err := os.CreateTemp("", "smelt-eval-mix-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return shards.LoadMix(f.Name())
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// checkTokens refuses token data from another tokenizer than the model's.
func (ev *evaluator) checkTokens(ti shards.TokenizerInfo, path string) error {
	if ti.VocabSize > ev.cfg.Vocab {
		return fmt.Errorf("%s: tokenizer %s has %d ids, the model %d", path, ti.Name, ti.VocabSize, ev.cfg.Vocab)
	}
	if ev.tokHash != "" && ti.RanksHash != "" && ti.RanksHash != ev.tokHash {
		return fmt.Errorf("%s was tokenized with %s (ranks hash %s), the checkpoint with ranks hash %s: score its text instead", path, ti.Name, ti.RanksHash, ev.tokHash)
	}
	if ti.EOT != ev.eot {
		return fmt.Errorf("%s: end-of-text id %d, the checkpoint's is %d", path, ti.EOT, ev.eot)
	}
	return nil
}

// forEachPathDoc reads one path: a token-shard or document-shard
// directory, a mix file, a JSONL file or a text file.
func (ev *evaluator) forEachPathDoc(p string, fn func(evalDoc) error) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(filepath.Base(filepath.Clean(p)), filepath.Ext(p))
	if fi.IsDir() {
		man, err := shards.ReadManifest(p)
		if err != nil {
			return err
		}
		if man.Kind == shards.KindTokens {
			if man.Tokenizer == nil {
				return fmt.Errorf("%s: token manifest without a tokenizer", p)
			}
			if err := ev.checkTokens(*man.Tokenizer, p); err != nil {
				return err
			}
			return forEachTokenRow(p, man, ev.cfg.Vocab, func(src string, toks []uint32) error {
				if src == "" {
					src = filepath.Base(filepath.Clean(p))
				}
				return fn(evalDoc{source: src, toks: toks})
			})
		}
		r, err := shards.OpenDocDirs(p)
		if err != nil {
			return err
		}
		defer r.Close()
		for {
			d, err := r.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := ev.text(d.Source, d.Text, p, fn); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(filepath.Ext(p)) {
	case ".yaml", ".yml":
		mix, err := ev.openMix([]string{p})
		if err != nil {
			return err
		}
		for _, s := range mix.Sources {
			err := forEachTokenRow(s.Dir, s.Manifest, ev.cfg.Vocab, func(_ string, toks []uint32) error {
				return fn(evalDoc{source: s.Name, toks: toks})
			})
			if err != nil {
				return err
			}
		}
		return nil
	case ".jsonl", ".ndjson":
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		br := bufio.NewReaderSize(f, 1<<20)
		var off int64
		for line := 1; ; line++ {
			b, err := br.ReadBytes('\n')
			if len(b) > 0 && strings.TrimSpace(string(b)) != "" {
				var rec struct {
					Text   *string `json:"text"`
					Source string  `json:"source"`
				}
				if jerr := json.Unmarshal(b, &rec); jerr != nil || rec.Text == nil {
					if jerr == nil {
						jerr = errors.New(`no "text" field`)
					}
					return fmt.Errorf("%s line %d (byte %d): %w", p, line, off, jerr)
				}
				src := rec.Source
				if src == "" {
					src = base
				}
				if err := ev.text(src, *rec.Text, p, fn); err != nil {
					return err
				}
			}
			off += int64(len(b))
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	default:
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return ev.text(base, string(data), p, fn)
	}
}

// text tokenizes one document's text as the tokenize stage does: its
// ordinary tokens, then the end-of-text id. Empty text is skipped.
func (ev *evaluator) text(source, text, path string, fn func(evalDoc) error) error {
	if text == "" {
		return nil
	}
	var toks []uint32
	switch {
	case ev.tok != nil:
		toks = ev.tok.AppendEncodeOrdinary(make([]uint32, 0, len(text)/3+2), text)
	case ev.cfg.Vocab == 256 && ev.tokBytes != nil: // text:FILE runs: one id per byte
		toks = make([]uint32, 0, len(text)+1)
		for i := 0; i < len(text); i++ {
			toks = append(toks, uint32(text[i]))
		}
	default:
		return fmt.Errorf("%s: the checkpoint does not embed its tokenizer, so text cannot be scored (score token shards, or retrain with --tokenizer)", path)
	}
	return fn(evalDoc{source: source, toks: append(toks, ev.eot)})
}

// forEachTokenRow calls fn with every non-empty row of a token-shard
// directory, shards in manifest order.
func forEachTokenRow(dir string, man *shards.Manifest, vocab int, fn func(src string, toks []uint32) error) error {
	var buf []uint32
	for i := range man.Shards {
		info := man.Shards[i]
		ts, err := shards.ReadTokenShard(filepath.Join(dir, info.Name), &info, vocab)
		if err != nil {
			return err
		}
		for row := range ts.Rows() {
			if n := ts.Len(row); n > 0 {
				buf = ts.AppendTokens(buf[:0], row, 0, n)
				if err := fn(ts.Source(row), buf); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
