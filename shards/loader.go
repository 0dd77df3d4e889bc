package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/bits"
	"path/filepath"
	"sort"
	"strconv"
)

// LoaderOptions configure a Loader. SeqLen and BatchSize are required.
type LoaderOptions struct {
	// SeqLen is the model's context length: each sample holds SeqLen+1
	// tokens, so inputs are [:SeqLen] and targets [1:].
	SeqLen, BatchSize int
	// Seed drives the per-source shuffles of shards, documents and samples.
	Seed uint64
	// Rank and World shard the samples across data-parallel ranks: in every
	// window of every epoch, each sample goes to exactly one rank. World 0
	// means 1.
	Rank, World int
	// ValFraction holds out this fraction of the data, independent of Seed
	// so that the split never moves. A source expected to hold out at least
	// MinHeldOutDocs documents is split by document id; a source with fewer
	// documents (a few long books) is split by chunks of HeldOutChunk
	// samples' worth of tokens, chosen by a hash of (document id, offset).
	// Val reads only the held-out data; otherwise it is skipped. A loader
	// that skips nothing has ValFraction 0.
	ValFraction float64
	Val         bool
	// Window is the number of samples of a source shuffled together
	// (0 = DefaultWindow). A window is the smallest run of whole shards,
	// in the epoch's shard order, that holds at least Window samples, or
	// the rest of the epoch; a source keeps one window decoded in memory.
	Window int
}

// DefaultWindow is the default number of samples shuffled together: 2^18,
// enough to mix thousands of documents (16.8M tokens at SeqLen 64, 268M at
// 1024).
const DefaultWindow = 1 << 18

// MinHeldOutDocs is the number of held-out documents a source must be
// expected to have (documents x ValFraction) for its validation split to be
// by document; below it the split is by chunks of text.
const MinHeldOutDocs = 16

// HeldOutChunk is the length of the pieces a source split by samples is
// cut into, in units of SeqLen tokens: each piece is held out or not as a
// whole, so most held-out samples are one stretch of text.
const HeldOutChunk = 4

// Split names how a source's validation data is chosen.
type Split string

// The validation splits.
const (
	SplitNone      Split = "none"      // ValFraction 0: nothing held out
	SplitDocuments Split = "documents" // whole documents, by a hash of the id
	SplitSamples   Split = "samples"   // chunks of documents, by a hash of (id, offset)
)

// Loader yields batches of token samples from a Mix, the way Megatron-LM's
// and mosaicml streaming's indexed datasets do, within a bounded window.
//
// Per source, every epoch shuffles the order of the shards and cuts it into
// windows of about Window samples. Per window, the kept documents (or kept
// pieces of documents, see ValFraction) are shuffled and laid end to end,
// each ending with its end-of-text id; their running token totals index the
// window's samples, SeqLen+1 tokens each, consecutive samples overlapping
// by one token so that no transition is lost (fewer than SeqLen tokens at a
// window's end go unused). The samples are then drawn in a seeded
// permutation, rank r of World taking every World-th. All shuffles are
// seeded by (Seed, source name, epoch, window).
//
// Mixing is per row: each batch gives every source its weight's share of
// the BatchSize rows to within one row (floor or ceiling of
// weight*BatchSize), the extra rows going to the sources furthest behind
// their share of all rows so far, so the running totals stay within one row
// of the weights too. A long document is thus spread over the whole window
// instead of filling consecutive batches.
//
// The state is a handful of counters per source (epoch, window, position,
// rows), so State and Restore reproduce exactly the batches of an
// uninterrupted run. Each shard is read whole when its window is built
// (unless the previous window holds it), its sha256 checked against the
// manifest and its ids against the vocabulary.
// Every rank reads every shard. A Loader is not safe for concurrent use.
type Loader struct {
	mix    *Mix
	opt    LoaderOptions
	fp     string
	srcs   []*srcCursor
	batch  int64
	tokens int64
	quota  []int // rows per source of the batch being built (scratch)
	order  []int // sources by deficit (scratch)
}

// srcCursor walks one source's samples.
type srcCursor struct {
	idx   int
	src   *MixSource
	seed  uint64
	split Split
	// Persistent state.
	Epoch  int64 `json:"epoch"`
	Window int   `json:"window"`
	Pos    int64 `json:"pos"`
	Rows   int64 `json:"rows"`
	// Derived state, rebuilt from the above.
	builtEpoch  int64
	shardPerm   []int
	winStart    []int // start of each window in shardPerm, plus len
	builtWindow int
	win         window
	idle        int // windows passed without a sample since the last one
}

// window is one window's decoded shards and sample index.
type window struct {
	shards []*TokenShard
	index  []int // shards[i] is the source's shard index[i]
	pieces []piece
	cum    []int64 // running token totals of pieces, len(pieces)+1
	perm   []uint32
}

// piece is a stretch of one document: all of it, or the kept chunks.
type piece struct {
	shard    uint32 // index in window.shards
	row      uint32
	off, len uint32
}

// loaderState is the serialised form of a Loader's state.
type loaderState struct {
	Version     int          `json:"version"`
	Fingerprint string       `json:"fingerprint"`
	Batch       int64        `json:"batch"`
	Tokens      int64        `json:"tokens"`
	Sources     []*srcCursor `json:"sources"`
}

const stateVersion = 2

// NewLoader returns a loader at the start of the mix.
func NewLoader(m *Mix, opt LoaderOptions) (*Loader, error) {
	if m == nil || len(m.Sources) == 0 {
		return nil, errors.New("loader: empty mix")
	}
	if opt.SeqLen <= 0 || opt.BatchSize <= 0 {
		return nil, fmt.Errorf("loader: seq_len %d and batch_size %d must be positive", opt.SeqLen, opt.BatchSize)
	}
	if opt.SeqLen >= 1<<24 {
		return nil, fmt.Errorf("loader: seq_len %d too large", opt.SeqLen)
	}
	if opt.World == 0 {
		opt.World = 1
	}
	if opt.World < 0 || opt.Rank < 0 || opt.Rank >= opt.World {
		return nil, fmt.Errorf("loader: rank %d outside world size %d", opt.Rank, opt.World)
	}
	if !(opt.ValFraction >= 0 && opt.ValFraction < 1) {
		return nil, fmt.Errorf("loader: val fraction %v must be in [0, 1)", opt.ValFraction)
	}
	if opt.Val && opt.ValFraction == 0 {
		return nil, errors.New("loader: Val reads the held-out data, but ValFraction is 0")
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	l := &Loader{mix: m, opt: opt, quota: make([]int, len(m.Sources)), order: make([]int, len(m.Sources))}
	// The batch size only groups rows: each source's sample stream does
	// not depend on it, so a run may resume with another. Everything that
	// changes the samples, SeqLen included, is in the fingerprint.
	fpOpt := opt
	fpOpt.BatchSize = 0
	fp := struct {
		Opt     LoaderOptions `json:"opt"`
		Version int           `json:"version"`
		Sources []any         `json:"sources"`
	}{Opt: fpOpt, Version: stateVersion}
	for i, s := range m.Sources {
		sums := make([]string, len(s.Manifest.Shards))
		for j, sh := range s.Manifest.Shards {
			sums[j] = sh.SHA256
		}
		fp.Sources = append(fp.Sources, []any{s.Name, s.Weight, sums})
		l.srcs = append(l.srcs, &srcCursor{idx: i, src: s, seed: opt.Seed ^ hash64(s.Name), split: splitOf(s, opt.ValFraction),
			builtEpoch: -1, builtWindow: -1})
	}
	data, err := json.Marshal(fp)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	l.fp = hex.EncodeToString(sum[:16])
	return l, nil
}

func splitOf(s *MixSource, frac float64) Split { return SplitFor(s.Docs(), frac) }

// Mix returns the loader's mix.
func (l *Loader) Mix() *Mix { return l.mix }

// Options returns the loader's options, with the defaults filled in.
func (l *Loader) Options() LoaderOptions { return l.opt }

// Probe checks that the loader can fill a batch, then rewinds it: a
// validation split may leave a source nothing to give.
func (l *Loader) Probe() error {
	st, err := l.State()
	if err != nil {
		return err
	}
	if err := l.Next(make([]uint32, l.BatchTokens())); err != nil {
		return err
	}
	return l.Restore(st)
}

// OpenTraining opens the loaders of a training run on m. With
// opt.ValFraction 0 it returns a loader over all the data and no
// validation loader. Otherwise it returns a training loader over the data
// not held out and a validation loader over the held-out data, and logs
// how each source is split. A source whose held-out data cannot fill a
// batch (a small source at a small fraction) is left out of validation,
// with a warning, the others' weights renormalised; when no source has
// any, there is no validation loader and the training loader reads all the
// data. train.Options().ValFraction is the fraction actually held out.
func OpenTraining(m *Mix, opt LoaderOptions) (train, val *Loader, err error) {
	opt.Val = false
	if opt.ValFraction > 0 {
		vo := opt
		vo.Val = true
		var keep []*MixSource
		var sum float64
		for _, s := range m.Sources {
			one := *s
			one.Weight = 1
			l, err := NewLoader(&Mix{Path: m.Path, Sources: []*MixSource{&one}, tok: m.tok}, vo)
			if err != nil {
				return nil, nil, err
			}
			split := l.srcs[0].split
			if perr := l.Probe(); perr != nil {
				slog.Warn("validation: source left out, its held-out data cannot fill a batch", "source", s.Name, "by", split,
					"documents", s.Docs(), "val_fraction", opt.ValFraction, "err", perr)
				continue
			}
			slog.Info("validation split", "source", s.Name, "by", split, "documents", s.Docs(), "val_fraction", opt.ValFraction)
			keep = append(keep, s)
			sum += s.Weight
		}
		if len(keep) == 0 {
			slog.Warn("no validation loss for this run: no source's held-out data can fill a batch; training on all the data", "val_fraction", opt.ValFraction)
			opt.ValFraction = 0
		} else {
			vm := &Mix{Path: m.Path, tok: m.tok}
			for _, s := range keep {
				c := *s
				c.Weight = s.Weight / sum
				vm.Sources = append(vm.Sources, &c)
			}
			if val, err = NewLoader(vm, vo); err != nil {
				return nil, nil, err
			}
		}
	}
	train, err = NewLoader(m, opt)
	if err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

// Splits is how each source's validation data is chosen, in mix order.
func (l *Loader) Splits() []Split {
	out := make([]Split, len(l.srcs))
	for i, s := range l.srcs {
		out[i] = s.split
	}
	return out
}

// Tokens is the number of tokens yielded so far.
func (l *Loader) Tokens() int64 { return l.tokens }

// SourceRows is the number of rows (samples) each source has contributed
// so far, in mix order.
func (l *Loader) SourceRows() []int64 {
	out := make([]int64, len(l.srcs))
	for i, s := range l.srcs {
		out[i] = s.Rows
	}
	return out
}

// SourceTokens is the number of tokens each source has contributed so far,
// in mix order.
func (l *Loader) SourceTokens() []int64 {
	out := l.SourceRows()
	for i := range out {
		out[i] *= int64(l.opt.SeqLen + 1)
	}
	return out
}

// SourceEpochs is the epoch each source is in (0-based), in mix order.
func (l *Loader) SourceEpochs() []int64 {
	out := make([]int64, len(l.srcs))
	for i, s := range l.srcs {
		out[i] = s.Epoch
	}
	return out
}

// BatchTokens is the length Next wants: BatchSize*(SeqLen+1).
func (l *Loader) BatchTokens() int { return l.opt.BatchSize * (l.opt.SeqLen + 1) }

// Next fills dst, which must hold exactly BatchSize*(SeqLen+1) tokens, with
// the next batch: BatchSize samples of SeqLen+1 tokens, row-major, the rows
// of each source together in mix order. After an error (a damaged shard)
// the loader's position is undefined: Restore a saved state to go on.
func (l *Loader) Next(dst []uint32) error {
	if len(dst) != l.BatchTokens() {
		return fmt.Errorf("loader: batch buffer holds %d tokens, want batch_size*(seq_len+1) = %d", len(dst), l.BatchTokens())
	}
	l.plan()
	T1 := l.opt.SeqLen + 1
	row := 0
	for i, s := range l.srcs {
		for range l.quota[i] {
			if err := l.sample(s, dst[row*T1:(row+1)*T1]); err != nil {
				return err
			}
			row++
		}
	}
	l.batch++
	l.tokens += int64(len(dst))
	return nil
}

// plan sets quota to the rows each source gives the next batch: the floor
// of weight*BatchSize, plus one for the sources furthest behind their
// share of all rows so far until the batch is full.
func (l *Loader) plan() {
	B := l.opt.BatchSize
	var total int64
	for _, s := range l.srcs {
		total += s.Rows
	}
	after := float64(total + int64(B))
	left := B
	deficit := func(i int) float64 {
		s := l.srcs[i]
		// Explicit conversions keep the compiler from fusing operations,
		// so the plan is the same on every architecture.
		return float64(s.src.Weight*after) - float64(s.Rows+int64(l.quota[i]))
	}
	for i, s := range l.srcs {
		l.quota[i] = int(math.Floor(float64(s.src.Weight * float64(B))))
		left -= l.quota[i]
		l.order[i] = i
	}
	if left <= 0 {
		return
	}
	sort.SliceStable(l.order, func(a, b int) bool { return deficit(l.order[a]) > deficit(l.order[b]) })
	for k := 0; left > 0; k = (k + 1) % len(l.order) {
		l.quota[l.order[k]]++
		left--
	}
}

// sample copies s's next sample for this rank into dst.
func (l *Loader) sample(s *srcCursor, dst []uint32) error {
	W := int64(l.opt.World)
	for {
		if err := l.ensureWindow(s); err != nil {
			return err
		}
		n := int64(len(s.win.perm))
		if i := int64(l.opt.Rank) + s.Pos*W; i < n {
			s.Pos++
			s.Rows++
			s.idle = 0
			l.copySample(&s.win, int64(s.win.perm[i])*int64(l.opt.SeqLen), dst)
			return nil
		}
		s.idle++
		if s.idle > len(s.winStart) {
			what := "training"
			if l.opt.Val {
				what = "held-out"
			}
			return fmt.Errorf("loader: source %q (%s) has no %s samples of %d tokens for rank %d of %d in a whole epoch",
				s.src.Name, s.src.Dir, what, l.opt.SeqLen+1, l.opt.Rank, l.opt.World)
		}
		s.Window++
		s.Pos = 0
		if s.Window >= len(s.winStart)-1 {
			s.Epoch++
			s.Window = 0
		}
	}
}

// copySample copies the SeqLen+1 tokens of w's concatenation from start.
func (l *Loader) copySample(w *window, start int64, dst []uint32) {
	// The piece holding start: the last one whose running total is <= start.
	p := sort.Search(len(w.pieces), func(i int) bool { return w.cum[i+1] > start })
	off := start - w.cum[p]
	for n := 0; n < len(dst); p++ {
		pc := w.pieces[p]
		k := min(int64(pc.len)-off, int64(len(dst)-n))
		w.shards[pc.shard].copyTokens(dst[n:n+int(k)], int(pc.row), int(pc.off)+int(off))
		n += int(k)
		off = 0
	}
}

// copyTokens copies len(dst) tokens of row starting at off.
func (s *TokenShard) copyTokens(dst []uint32, row, off int) {
	lo := s.offs[row] + int64(off)
	if s.u32 != nil {
		copy(dst, s.u32[lo:lo+int64(len(dst))])
		return
	}
	src := s.u16[lo : lo+int64(len(dst))]
	for i, t := range src {
		dst[i] = uint32(t)
	}
}

// ensureEpoch builds the shard order of s's epoch and its windows.
func (l *Loader) ensureEpoch(s *srcCursor) {
	if s.builtEpoch == s.Epoch {
		return
	}
	s.shardPerm, s.winStart = epochWindows(s.src.Manifest.Shards, s.seed, s.Epoch, int64(l.opt.Window)*int64(l.opt.SeqLen), s.shardPerm, s.winStart)
	s.builtEpoch = s.Epoch
	s.builtWindow = -1
}

// epochWindows returns the shard order of a source's epoch and the start
// of each window in it (plus the end): runs of shards, in that order,
// holding at least want tokens by the manifest's counts. perm and starts
// are reused.
func epochWindows(shards []ShardInfo, seed uint64, epoch int64, want int64, perm, starts []int) ([]int, []int) {
	perm = perm[:0]
	for i := range shards {
		perm = append(perm, i)
	}
	r := newSplitMix(seed, uint64(epoch), math.MaxUint64)
	for i := len(perm) - 1; i > 0; i-- {
		j := r.bounded(uint64(i + 1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	starts = append(starts[:0], 0)
	var acc int64
	for i, sh := range perm {
		acc += max(shards[sh].Tokens, 1)
		if acc >= want && i+1 < len(perm) {
			starts = append(starts, i+1)
			acc = 0
		}
	}
	return perm, append(starts, len(perm))
}

// ensureWindow reads s's current window and builds its sample index.
func (l *Loader) ensureWindow(s *srcCursor) error {
	l.ensureEpoch(s)
	if s.builtWindow == s.Window {
		return nil
	}
	w := &s.win
	s.builtWindow = -1
	// Shards of the previous window that are in this one (a window that
	// spans the turn of an epoch, a source of one window) stay decoded;
	// the others are dropped before any is read.
	members := s.shardPerm[s.winStart[s.Window]:s.winStart[s.Window+1]]
	kept := map[int]*TokenShard{}
	for i, sh := range w.index {
		for _, m := range members {
			if m == sh {
				kept[sh] = w.shards[i]
			}
		}
	}
	clear(w.shards)
	w.shards, w.index = w.shards[:0], w.index[:0]
	w.pieces = w.pieces[:0]
	chunk := HeldOutChunk * l.opt.SeqLen
	for k, sh := range members {
		info := s.src.Manifest.Shards[sh]
		ts := kept[sh]
		if ts == nil {
			var err error
			if ts, err = ReadTokenShard(filepath.Join(s.src.Dir, info.Name), &info, l.mix.VocabSize()); err != nil {
				return fmt.Errorf("loader: source %q: %w", s.src.Name, err)
			}
			if int64(ts.Rows()) != info.Rows {
				return fmt.Errorf("loader: token shard %s has %d rows, its manifest says %d", ts.Path, ts.Rows(), info.Rows)
			}
		}
		w.shards = append(w.shards, ts)
		w.index = append(w.index, sh)
		for row := range ts.Rows() {
			n := ts.Len(row)
			if n == 0 {
				continue
			}
			if n >= math.MaxUint32 {
				return fmt.Errorf("loader: token shard %s: document %s has %d tokens, too many", ts.Path, ts.ID(row), n)
			}
			w.pieces = appendPieces(w.pieces, ts, uint32(k), row, s.split, l.opt.ValFraction, l.opt.Val, chunk)
		}
	}
	r := newSplitMix(s.seed, uint64(s.Epoch), uint64(s.Window)<<1)
	for i := len(w.pieces) - 1; i > 0; i-- {
		j := r.bounded(uint64(i + 1))
		w.pieces[i], w.pieces[j] = w.pieces[j], w.pieces[i]
	}
	w.cum = append(w.cum[:0], 0)
	for _, p := range w.pieces {
		w.cum = append(w.cum, w.cum[len(w.cum)-1]+int64(p.len))
	}
	var n int64
	if total := w.cum[len(w.cum)-1]; total > int64(l.opt.SeqLen) {
		n = (total - 1) / int64(l.opt.SeqLen)
	}
	if n > math.MaxUint32 {
		return fmt.Errorf("loader: source %q: a window holds %d samples, too many (lower the window)", s.src.Name, n)
	}
	if int64(cap(w.perm)) >= n {
		w.perm = w.perm[:n]
	} else {
		w.perm = make([]uint32, n)
	}
	for i := range w.perm {
		w.perm[i] = uint32(i)
	}
	r = newSplitMix(s.seed, uint64(s.Epoch), uint64(s.Window)<<1|1)
	for i := len(w.perm) - 1; i > 0; i-- {
		j := r.bounded(uint64(i + 1))
		w.perm[i], w.perm[j] = w.perm[j], w.perm[i]
	}
	s.builtWindow = s.Window
	return nil
}

// appendPieces appends to dst the pieces of row of ts that a loader with
// this split reads (see appendRanges).
func appendPieces(dst []piece, ts *TokenShard, k uint32, row int, split Split, frac float64, val bool, chunk int) []piece {
	var buf [8][2]int
	for _, r := range appendRanges(buf[:0], ts.ID(row), ts.Len(row), split, frac, val, chunk) {
		dst = append(dst, piece{shard: k, row: uint32(row), off: uint32(r[0]), len: uint32(r[1] - r[0])})
	}
	return dst
}

// appendRanges appends the [start, end) token ranges of a document of n
// tokens that a loader with this split reads: all of it; for val (the
// held-out side) or not, the document when its id is (not) held out; or
// the runs of its chunks of chunk tokens that are (not) held out. It is
// the one place the loaders, HeldOut, Passes and the exports decide what
// is held out.
func appendRanges(dst [][2]int, id string, n int, split Split, frac float64, val bool, chunk int) [][2]int {
	switch split {
	case SplitNone:
		dst = append(dst, [2]int{0, n})
	case SplitDocuments:
		if IsHeldOut(id, frac) == val {
			dst = append(dst, [2]int{0, n})
		}
	case SplitSamples:
		// Runs of kept chunks become ranges.
		start := -1
		for off := 0; off < n; off += chunk {
			keep := IsHeldOutChunk(id, off, frac) == val
			if keep && start < 0 {
				start = off
			}
			if !keep && start >= 0 {
				dst = append(dst, [2]int{start, off})
				start = -1
			}
		}
		if start >= 0 {
			dst = append(dst, [2]int{start, n})
		}
	}
	return dst
}

// SplitFor is how the loader splits a source of docs documents at
// valFraction (see LoaderOptions.ValFraction).
func SplitFor(docs int64, valFraction float64) Split {
	switch {
	case valFraction == 0:
		return SplitNone
	case float64(docs)*valFraction >= MinHeldOutDocs:
		return SplitDocuments
	default:
		return SplitSamples
	}
}

// HeldOutRanges appends the [start, end) token ranges of document id (n
// tokens) in a source split as split at valFraction and seqLen that the
// loader holds out (val) or trains on (!val): the split smelt validates on,
// for the exports that write it.
func HeldOutRanges(dst [][2]int, id string, n int, split Split, valFraction float64, seqLen int, val bool) [][2]int {
	return appendRanges(dst, id, n, split, valFraction, val, HeldOutChunk*seqLen)
}

// IsHeldOut reports whether the document with this id belongs to the
// held-out split for a validation fraction (sources split by documents).
func IsHeldOut(id string, valFraction float64) bool {
	return mix64(hash64(id)) < uint64(valFraction*(1<<63)*2)
}

// IsHeldOutChunk reports whether the chunk of document id starting at token
// offset belongs to the held-out split (sources split by samples).
func IsHeldOutChunk(id string, offset int, valFraction float64) bool {
	return mix64(hash64(id+"@"+strconv.Itoa(offset))) < uint64(valFraction*(1<<63)*2)
}

// State returns the loader's position, a small JSON document. Restore on a
// loader made with the same mix and options continues exactly from there.
func (l *Loader) State() ([]byte, error) {
	return json.Marshal(loaderState{Version: stateVersion, Fingerprint: l.fp, Batch: l.batch, Tokens: l.tokens, Sources: l.srcs})
}

// Restore moves the loader to a position saved by State.
func (l *Loader) Restore(state []byte) error {
	var st loaderState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("loader state: version %d not supported (this smelt writes %d; a run saved by the document-packing loader cannot continue on the sample index)", st.Version, stateVersion)
	}
	if st.Fingerprint != l.fp {
		return errors.New("loader state: saved with another mix, other shards or other loader options (seed, seq_len, rank, world, val split, window)")
	}
	if len(st.Sources) != len(l.srcs) {
		return fmt.Errorf("loader state: %d sources, the mix has %d", len(st.Sources), len(l.srcs))
	}
	for i, s := range st.Sources {
		d := l.srcs[i]
		if s.Epoch < 0 || s.Pos < 0 || s.Rows < 0 || s.Window < 0 {
			return fmt.Errorf("loader state: source %q: position out of range", d.src.Name)
		}
		d.Epoch, d.Window, d.Pos, d.Rows = s.Epoch, s.Window, s.Pos, s.Rows
		d.builtEpoch, d.builtWindow, d.idle = -1, -1, 0
		l.ensureEpoch(d)
		if d.Window >= len(d.winStart)-1 {
			return fmt.Errorf("loader state: source %q: window %d of %d", d.src.Name, d.Window, len(d.winStart)-1)
		}
	}
	l.batch, l.tokens = st.Batch, st.Tokens
	return nil
}

// hash64 is FNV-1a over s: a fixed, specified function, so held-out
// splits and seeds never change between processes or Go releases.
func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// mix64 is the splitmix64 finaliser: it spreads the bits of x.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// splitMix is a small seeded generator written out here, rather than
// math/rand/v2, so that shuffles (and so resumed runs) never change with
// the Go release.
type splitMix struct{ s uint64 }

func newSplitMix(seed, a, b uint64) *splitMix {
	return &splitMix{s: mix64(seed ^ mix64(a+0x9e3779b97f4a7c15) ^ mix64(b^0xd1b54a32d192ed03))}
}

func (r *splitMix) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// bounded returns a uniform value in [0, n) (Lemire's method).
func (r *splitMix) bounded(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}
