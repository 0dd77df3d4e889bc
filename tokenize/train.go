package tokenize

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// TrainOptions configures Train.
type TrainOptions struct {
	// VocabSize is the final vocabulary size: specials + 256 bytes + merges.
	VocabSize int
	// Specials are special tokens: they get the first ids, and the input is
	// split on them (they never take part in merges).
	Specials []string
	// Pattern is the pre-tokenisation rule (default GPT-2, as in cs336).
	Pattern Pattern
	// Workers pre-tokenise in parallel (default GOMAXPROCS). The result does
	// not depend on it.
	Workers int
	// ChunkSize is the read size in bytes (default 4 MiB); input is cut only
	// where pre-tokenisation must break anyway, after a newline followed by
	// a printable ASCII byte, so it does not change the result either.
	ChunkSize int
	// Progress, when set, is called as input is read (phase "count", bytes
	// done) and as merges are learned (phase "merge", merges done of total).
	Progress func(phase string, done, total int64)
}

// Trained is a learned byte-level BPE vocabulary.
type Trained struct {
	// Vocab holds each id's bytes: specials first, then the 256 single
	// bytes in GPT-2's order, then one token per merge.
	Vocab [][]byte
	// Merges in the order learned.
	Merges [][2][]byte
	// Specials are the special tokens (ids 0..len-1).
	Specials []string
	// Pattern is the pre-tokenisation rule used.
	Pattern Pattern
	// Stats about the run.
	InputBytes int64
	Words      int // distinct pre-tokens
	Duration   time.Duration
}

// Train learns a byte-level BPE vocabulary from inputs, reproducing the
// cs336 reference trainer exactly: pre-tokenise (splitting on specials
// first), count pre-tokens, then repeatedly merge the most frequent adjacent
// pair, ties broken by the lexicographically greatest (left bytes, right
// bytes). Inputs are streamed in chunks; memory is bounded by the number of
// distinct pre-tokens, not the input size.
func Train(ctx context.Context, inputs []io.Reader, opts TrainOptions) (*Trained, error) {
	start := time.Now()
	if opts.VocabSize < 256+len(opts.Specials) {
		return nil, fmt.Errorf("tokenize: vocabulary size %d is below 256 bytes + %d specials", opts.VocabSize, len(opts.Specials))
	}
	for _, s := range opts.Specials {
		if s == "" {
			return nil, errors.New("tokenize: empty special token")
		}
	}
	counts, nbytes, err := countWords(ctx, inputs, opts)
	if err != nil {
		return nil, err
	}
	tr := &Trained{Specials: append([]string(nil), opts.Specials...), Pattern: opts.Pattern, InputBytes: nbytes, Words: len(counts)}
	for _, s := range opts.Specials {
		tr.Vocab = append(tr.Vocab, []byte(s))
	}
	byteID := [256]int32{}
	for _, b := range byteOrder {
		byteID[b] = int32(len(tr.Vocab))
		tr.Vocab = append(tr.Vocab, []byte{b})
	}
	slog.Debug("tokenize: counted pre-tokens", "bytes", nbytes, "distinct", len(counts), "elapsed", time.Since(start))
	if err := learnMerges(ctx, tr, counts, byteID, opts); err != nil {
		return nil, err
	}
	tr.Duration = time.Since(start)
	return tr, nil
}

// TrainFiles is Train over files, with errors naming the file. Files ending
// in .gz or .zst are decompressed while streaming.
func TrainFiles(ctx context.Context, paths []string, opts TrainOptions) (*Trained, error) {
	var readers []io.Reader
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("tokenize: train: %w", err)
		}
		defer f.Close()
		var r io.Reader = f
		switch {
		case strings.HasSuffix(p, ".gz"):
			zr, err := gzip.NewReader(f)
			if err != nil {
				return nil, fmt.Errorf("tokenize: train: %s: %w", p, err)
			}
			defer zr.Close()
			r = zr
		case strings.HasSuffix(p, ".zst"):
			zr, err := zstd.NewReader(f)
			if err != nil {
				return nil, fmt.Errorf("tokenize: train: %s: %w", p, err)
			}
			defer zr.Close()
			r = zr
		}
		readers = append(readers, namedReader{r, p})
	}
	return Train(ctx, readers, opts)
}

type namedReader struct {
	io.Reader
	name string
}

// safeCut returns the length of the prefix of buf that can be pre-tokenised
// on its own: up to just after the last '\n' that is followed by a printable
// ASCII byte (every pattern breaks there), or 0 when there is none.
func safeCut(buf []byte) int {
	for i := len(buf) - 2; i >= 0; i-- {
		if buf[i] == '\n' && buf[i+1] > ' ' && buf[i+1] < 0x7f {
			return i + 1
		}
	}
	return 0
}

func countWords(ctx context.Context, inputs []io.Reader, opts TrainOptions) (map[string]int64, int64, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunkSize := opts.ChunkSize
	if chunkSize <= 0 {
		chunkSize = 4 << 20
	}
	split := opts.Pattern.split()
	specials := append([]string(nil), opts.Specials...)
	// Longest first, so a special that contains another wins.
	for i := range specials {
		for j := i + 1; j < len(specials); j++ {
			if len(specials[j]) > len(specials[i]) {
				specials[i], specials[j] = specials[j], specials[i]
			}
		}
	}
	jobs := make(chan string, workers)
	results := make([]map[string]int64, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		results[w] = make(map[string]int64)
		wg.Add(1)
		go func(m map[string]int64) {
			defer wg.Done()
			ct := classTable()
			for text := range jobs {
				for len(text) > 0 {
					seg := text
					at, sl := nextSpecial(text, specials)
					if at >= 0 {
						seg = text[:at]
						text = text[at+sl:]
					} else {
						text = ""
					}
					for p := 0; p < len(seg); {
						e := split(ct, seg, p)
						m[seg[p:e]]++
						p = e
					}
				}
			}
		}(results[w])
	}
	var total int64
	readErr := func() error {
		defer close(jobs)
		for _, in := range inputs {
			name := "input"
			if nr, ok := in.(namedReader); ok {
				name = nr.name
			}
			br := bufio.NewReaderSize(in, 64<<10)
			var carry []byte
			var off int64
			for {
				if err := ctx.Err(); err != nil {
					return err
				}
				buf := make([]byte, len(carry)+chunkSize)
				copy(buf, carry)
				n, err := io.ReadFull(br, buf[len(carry):])
				buf = buf[:len(carry)+n]
				off += int64(n)
				total += int64(n)
				eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
				if err != nil && !eof {
					return fmt.Errorf("tokenize: train: %s at byte offset %d: %w", name, off, err)
				}
				cut := len(buf)
				if !eof {
					if cut = safeCut(buf); cut == 0 {
						// No safe cut in the whole buffer: keep reading.
						carry = buf
						continue
					}
				}
				jobs <- string(buf[:cut])
				carry = append([]byte(nil), buf[cut:]...)
				if opts.Progress != nil {
					opts.Progress("count", total, 0)
				}
				if eof {
					break
				}
			}
		}
		return nil
	}()
	wg.Wait()
	if readErr != nil {
		return nil, 0, readErr
	}
	counts := results[0]
	for _, m := range results[1:] {
		for k, v := range m {
			counts[k] += v
		}
	}
	return counts, total, nil
}

func nextSpecial(text string, specials []string) (int, int) {
	best, bl := -1, 0
	for _, s := range specials {
		lim := len(text)
		if best >= 0 {
			lim = min(len(text), best+len(s))
		}
		if i := strings.Index(text[:lim], s); i >= 0 && (best < 0 || i < best) {
			best, bl = i, len(s)
		}
	}
	return best, bl
}

type word struct {
	syms  []int32
	count int64
	stamp int32 // last merge that visited it
}

type pairKey uint64

func mkPair(a, b int32) pairKey       { return pairKey(uint64(uint32(a))<<32 | uint64(uint32(b))) }
func (p pairKey) parts() (a, b int32) { return int32(uint32(p >> 32)), int32(uint32(p)) }

type pairEntry struct {
	count int64
	pair  pairKey
}

// pairHeap is a max-heap on (count, left bytes, right bytes).
type pairHeap struct {
	items []pairEntry
	vocab *[][]byte
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(i, j int) bool {
	x, y := h.items[i], h.items[j]
	if x.count != y.count {
		return x.count > y.count
	}
	xa, xb := x.pair.parts()
	ya, yb := y.pair.parts()
	v := *h.vocab
	if c := bytes.Compare(v[xa], v[ya]); c != 0 {
		return c > 0
	}
	return bytes.Compare(v[xb], v[yb]) > 0
}
func (h *pairHeap) Swap(i, j int) { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *pairHeap) Push(x any)    { h.items = append(h.items, x.(pairEntry)) }
func (h *pairHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}

func learnMerges(ctx context.Context, tr *Trained, counts map[string]int64, byteID [256]int32, opts TrainOptions) error {
	// Words in a fixed order (the result does not depend on it, but the
	// work does not vary between runs either).
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	words := make([]word, len(keys))
	pairCount := make(map[pairKey]int64)
	where := make(map[pairKey][]int32)
	for i, k := range keys {
		syms := make([]int32, len(k))
		for j := 0; j < len(k); j++ {
			syms[j] = byteID[k[j]]
		}
		words[i] = word{syms: syms, count: counts[k], stamp: -1}
		for j := 0; j+1 < len(syms); j++ {
			p := mkPair(syms[j], syms[j+1])
			pairCount[p] += counts[k]
			if l := where[p]; len(l) == 0 || l[len(l)-1] != int32(i) {
				where[p] = append(where[p], int32(i))
			}
		}
	}
	h := &pairHeap{vocab: &tr.Vocab}
	for p, c := range pairCount {
		h.items = append(h.items, pairEntry{c, p})
	}
	heap.Init(h)
	nMerges := opts.VocabSize - len(tr.Vocab)
	changed := make(map[pairKey]struct{})
	for m := 0; m < nMerges; m++ {
		if m%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if opts.Progress != nil {
				opts.Progress("merge", int64(m), int64(nMerges))
			}
		}
		var best pairEntry
		found := false
		for h.Len() > 0 {
			e := heap.Pop(h).(pairEntry)
			if c, ok := pairCount[e.pair]; ok && c == e.count && c > 0 {
				best, found = e, true
				break
			}
		}
		if !found {
			slog.Info("tokenize: no pairs left to merge", "merges", m, "wanted", nMerges)
			break
		}
		a, b := best.pair.parts()
		nid := int32(len(tr.Vocab))
		merged := append(append(make([]byte, 0, len(tr.Vocab[a])+len(tr.Vocab[b])), tr.Vocab[a]...), tr.Vocab[b]...)
		tr.Vocab = append(tr.Vocab, merged)
		tr.Merges = append(tr.Merges, [2][]byte{tr.Vocab[a], tr.Vocab[b]})
		clear(changed)
		for _, wi := range where[best.pair] {
			w := &words[wi]
			if w.stamp == int32(m) {
				continue
			}
			w.stamp = int32(m)
			s := w.syms
			hit := false
			for j := 0; j+1 < len(s); j++ {
				if s[j] == a && s[j+1] == b {
					hit = true
					break
				}
			}
			if !hit {
				continue
			}
			for j := 0; j+1 < len(s); j++ {
				p := mkPair(s[j], s[j+1])
				pairCount[p] -= w.count
				changed[p] = struct{}{}
			}
			out := s[:0]
			for j := 0; j < len(s); j++ {
				if j+1 < len(s) && s[j] == a && s[j+1] == b {
					out = append(out, nid)
					j++
				} else {
					out = append(out, s[j])
				}
			}
			w.syms = out
			for j := 0; j+1 < len(out); j++ {
				p := mkPair(out[j], out[j+1])
				pairCount[p] += w.count
				changed[p] = struct{}{}
				if out[j] == nid || out[j+1] == nid {
					if l := where[p]; len(l) == 0 || l[len(l)-1] != wi {
						where[p] = append(where[p], wi)
					}
				}
			}
		}
		delete(where, best.pair)
		delete(pairCount, best.pair)
		for p := range changed {
			c := pairCount[p]
			if c <= 0 {
				delete(pairCount, p)
				continue
			}
			heap.Push(h, pairEntry{c, p})
		}
	}
	if opts.Progress != nil {
		opts.Progress("merge", int64(len(tr.Merges)), int64(nMerges))
	}
	return nil
}

// Tokenizer builds an encoder from the trained vocabulary (the same
// Tokenizer that loading its tokenizer.json gives).
func (tr *Trained) Tokenizer(name string) (*Tokenizer, error) {
	vocab := make(map[string]uint32, len(tr.Vocab))
	specials := make(map[string]uint32, len(tr.Specials))
	for id, tok := range tr.Vocab {
		if id < len(tr.Specials) {
			specials[tr.Specials[id]] = uint32(id)
			continue
		}
		if _, dup := vocab[string(tok)]; !dup {
			vocab[string(tok)] = uint32(id)
		}
	}
	merges := make([][2]string, len(tr.Merges))
	for i, m := range tr.Merges {
		merges[i] = [2]string{string(m[0]), string(m[1])}
	}
	return buildFromMerges(name, tr.Pattern, vocab, merges, specials)
}

// MarshalHF renders the vocabulary as a Hugging Face tokenizer.json
// (byte-level BPE, merges as pairs, specials as added tokens), vocab in id
// order.
func (tr *Trained) MarshalHF() ([]byte, error) {
	var buf bytes.Buffer
	q := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	buf.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, s := range tr.Specials {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, "\n    {\"id\": %d, \"content\": %s, \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true}", i, q(s))
	}
	buf.WriteString("\n  ],\n  \"normalizer\": null,\n")
	switch tr.Pattern {
	case PatternGPT2:
		buf.WriteString("  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},\n")
	default:
		fmt.Fprintf(&buf, "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": %s}, \"behavior\": \"Isolated\", \"invert\": false}, {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": false}]},\n", q(tr.Pattern.Regexp()))
	}
	buf.WriteString("  \"post_processor\": null,\n  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n")
	buf.WriteString("  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {")
	for id, tok := range tr.Vocab {
		if id > 0 {
			buf.WriteString(",")
		}
		s := ByteLevelString(tok)
		if id < len(tr.Specials) {
			s = tr.Specials[id]
		}
		fmt.Fprintf(&buf, "\n      %s: %d", q(s), id)
	}
	buf.WriteString("\n    },\n    \"merges\": [")
	for i, m := range tr.Merges {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, "\n      [%s, %s]", q(ByteLevelString(m[0])), q(ByteLevelString(m[1])))
	}
	buf.WriteString("\n    ]\n  }\n}\n")
	return buf.Bytes(), nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsynced and renamed into place.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("tokenize: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("tokenize: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tokenize: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("tokenize: write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
