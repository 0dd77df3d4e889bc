package shards

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"path/filepath"
)

// LoaderOptions configure a Loader. SeqLen and BatchSize are required.
type LoaderOptions struct {
	// SeqLen is the model's context length: each sequence holds SeqLen+1
	// tokens, so inputs are [:SeqLen] and targets [1:].
	SeqLen, BatchSize int
	// Seed drives the per-source document shuffles.
	Seed uint64
	// Rank and World shard the documents across data-parallel ranks: each
	// epoch of a source, every document goes to exactly one rank. World 0
	// means 1.
	Rank, World int
	// ValFraction holds out this fraction of documents, chosen by a hash of
	// their id (independent of Seed, so the split never moves). Val reads
	// only the held-out documents; otherwise they are skipped.
	ValFraction float64
	Val         bool
	// Window is the number of shards of a source whose documents are
	// shuffled together (0 = DefaultWindow). Shard order is shuffled per
	// epoch too. A source keeps at most Window decoded shards in memory.
	Window int
}

// DefaultWindow is the default number of shards shuffled together.
const DefaultWindow = 4

// Loader yields batches of packed token sequences from a Mix.
//
// How it draws: the next document always comes from the source that is
// furthest behind its weight's share of the tokens emitted so far (the
// smallest emitted/weight; ties go to the earlier source), so every source
// contributes its share of tokens to within one document. Within a source,
// each epoch shuffles the order of the shards, cuts it into windows of
// Window shards and shuffles the documents of each window, all seeded by
// (Seed, source name, epoch, window). Documents are packed end to end, each
// ending with the end-of-text id, and cut into sequences of SeqLen+1 tokens
// without padding; a document that does not fit continues in the next
// sequence. The state is a handful of counters per source, so State and
// Restore reproduce exactly the batches of an uninterrupted run.
//
// Memory: each source keeps at most Window decoded shards (plus the one
// being packed); every shard is read whole, its sha256 checked against the
// manifest and its ids checked against the vocabulary each time it is
// loaded. Every rank reads every shard and keeps its own documents. A
// Loader is not safe for concurrent use.
type Loader struct {
	mix  *Mix
	opt  LoaderOptions
	fp   string
	srcs []*srcCursor
	// cur is the document being packed.
	cur    curDoc
	curTS  *TokenShard
	batch  int64
	tokens int64
}

type curDoc struct {
	Src   int `json:"src"` // -1: none
	Shard int `json:"shard"`
	Row   int `json:"row"`
	Off   int `json:"off"`
}

// srcCursor walks one source's documents.
type srcCursor struct {
	idx  int
	src  *MixSource
	seed uint64
	// Persistent state.
	Epoch   int64 `json:"epoch"`
	Group   int   `json:"group"`
	Pos     int   `json:"pos"`
	Emitted int64 `json:"emitted"`
	Taken   int64 `json:"taken"`
	// Derived state, rebuilt from the above.
	builtEpoch int64
	shardPerm  []int
	builtGroup int
	groupPerm  []uint32
	groupCum   []int64 // cumulative rows of the group's shards
	cache      map[int]*cachedShard
	scanned    int64 // documents looked at since the last one taken
}

type cachedShard struct {
	ts  *TokenShard
	val []bool
}

// loaderState is the serialised form of a Loader's state.
type loaderState struct {
	Version     int          `json:"version"`
	Fingerprint string       `json:"fingerprint"`
	Batch       int64        `json:"batch"`
	Tokens      int64        `json:"tokens"`
	Cur         curDoc       `json:"cur"`
	Sources     []*srcCursor `json:"sources"`
}

// NewLoader returns a loader at the start of the mix.
func NewLoader(m *Mix, opt LoaderOptions) (*Loader, error) {
	if m == nil || len(m.Sources) == 0 {
		return nil, errors.New("loader: empty mix")
	}
	if opt.SeqLen <= 0 || opt.BatchSize <= 0 {
		return nil, fmt.Errorf("loader: seq_len %d and batch_size %d must be positive", opt.SeqLen, opt.BatchSize)
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
		return nil, errors.New("loader: Val reads the held-out documents, but ValFraction is 0")
	}
	if opt.Window <= 0 {
		opt.Window = DefaultWindow
	}
	l := &Loader{mix: m, opt: opt, cur: curDoc{Src: -1}}
	// The state is a position in the token stream, which does not depend on
	// the batch geometry: a run may resume with another SeqLen or
	// BatchSize. Everything that changes the stream is in the fingerprint.
	fpOpt := opt
	fpOpt.SeqLen, fpOpt.BatchSize = 0, 0
	fp := struct {
		Opt     LoaderOptions `json:"opt"`
		Sources []any         `json:"sources"`
	}{Opt: fpOpt}
	for i, s := range m.Sources {
		sums := make([]string, len(s.Manifest.Shards))
		for j, sh := range s.Manifest.Shards {
			sums[j] = sh.SHA256
		}
		fp.Sources = append(fp.Sources, []any{s.Name, s.Weight, sums})
		l.srcs = append(l.srcs, &srcCursor{idx: i, src: s, seed: opt.Seed ^ hash64(s.Name), builtEpoch: -1, builtGroup: -1})
	}
	data, err := json.Marshal(fp)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	l.fp = hex.EncodeToString(sum[:16])
	return l, nil
}

// Mix returns the loader's mix.
func (l *Loader) Mix() *Mix { return l.mix }

// Tokens is the number of tokens yielded so far.
func (l *Loader) Tokens() int64 { return l.tokens }

// SourceTokens is the number of tokens each source has contributed so far,
// in mix order.
func (l *Loader) SourceTokens() []int64 {
	out := make([]int64, len(l.srcs))
	for i, s := range l.srcs {
		out[i] = s.Emitted
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
// the next batch: BatchSize sequences of SeqLen+1 tokens, row-major. After
// an error (a damaged shard) the loader's position is undefined: Restore a
// saved state to go on.
func (l *Loader) Next(dst []uint32) error {
	if len(dst) != l.BatchTokens() {
		return fmt.Errorf("loader: batch buffer holds %d tokens, want batch_size*(seq_len+1) = %d", len(dst), l.BatchTokens())
	}
	n := 0
	for n < len(dst) {
		if l.cur.Src < 0 {
			if err := l.nextDoc(); err != nil {
				return err
			}
		}
		ts, row := l.curTS, l.cur.Row
		docLen := ts.Len(row)
		k := min(docLen-l.cur.Off, len(dst)-n)
		copyTokens(dst[n:n+k], ts, row, l.cur.Off)
		n += k
		l.cur.Off += k
		l.srcs[l.cur.Src].Emitted += int64(k)
		if l.cur.Off >= docLen {
			l.cur = curDoc{Src: -1}
			l.curTS = nil
		}
	}
	l.batch++
	l.tokens += int64(len(dst))
	return nil
}

// copyTokens copies len(dst) tokens of row starting at off.
func copyTokens(dst []uint32, ts *TokenShard, row, off int) {
	lo := ts.offs[row] + int64(off)
	if ts.u32 != nil {
		copy(dst, ts.u32[lo:lo+int64(len(dst))])
		return
	}
	src := ts.u16[lo : lo+int64(len(dst))]
	for i, t := range src {
		dst[i] = uint32(t)
	}
}

// nextDoc picks the source furthest behind its share and takes its next
// document.
func (l *Loader) nextDoc() error {
	best := -1
	var bestV float64
	for i, s := range l.srcs {
		v := float64(s.Emitted) / s.src.Weight
		if best < 0 || v < bestV {
			best, bestV = i, v
		}
	}
	s := l.srcs[best]
	shard, row, ts, err := l.take(s)
	if err != nil {
		return err
	}
	l.cur = curDoc{Src: best, Shard: shard, Row: row}
	l.curTS = ts
	return nil
}

// take advances s to its next document for this rank and split.
func (l *Loader) take(s *srcCursor) (int, int, *TokenShard, error) {
	docs := s.src.Docs()
	limit := docs*int64(l.opt.World+1) + 1
	for {
		if err := l.ensureGroup(s); err != nil {
			return 0, 0, nil, err
		}
		if s.Pos >= len(s.groupPerm) {
			s.Group++
			s.Pos = 0
			if s.Group >= l.numGroups(s) {
				s.Epoch++
				s.Group = 0
			}
			continue
		}
		local := int64(s.groupPerm[s.Pos])
		s.Pos++
		s.scanned++
		if s.scanned > limit {
			what := "training"
			if l.opt.Val {
				what = "held-out"
			}
			return 0, 0, nil, fmt.Errorf("loader: source %q (%s) has no %s documents for rank %d of %d", s.src.Name, s.src.Dir, what, l.opt.Rank, l.opt.World)
		}
		gi := 0
		for local >= s.groupCum[gi+1] {
			gi++
		}
		shard := s.shardPerm[s.Group*l.opt.Window+gi]
		row := int(local - s.groupCum[gi])
		cs, err := l.shard(s, shard)
		if err != nil {
			return 0, 0, nil, err
		}
		if row >= cs.ts.Rows() {
			return 0, 0, nil, fmt.Errorf("loader: token shard %s has %d rows, its manifest says %d", cs.ts.Path, cs.ts.Rows(), s.src.Manifest.Shards[shard].Rows)
		}
		if l.opt.ValFraction > 0 && cs.val[row] != l.opt.Val {
			continue
		}
		mine := s.Taken%int64(l.opt.World) == int64(l.opt.Rank)
		s.Taken++
		if !mine {
			continue
		}
		if cs.ts.Len(row) == 0 {
			continue
		}
		s.scanned = 0
		return shard, row, cs.ts, nil
	}
}

func (l *Loader) numGroups(s *srcCursor) int {
	n := len(s.src.Manifest.Shards)
	return (n + l.opt.Window - 1) / l.opt.Window
}

// ensureGroup builds the shard order of s's epoch and the document order
// of its window.
func (l *Loader) ensureGroup(s *srcCursor) error {
	shards := s.src.Manifest.Shards
	if s.builtEpoch != s.Epoch {
		s.shardPerm = make([]int, len(shards))
		for i := range s.shardPerm {
			s.shardPerm[i] = i
		}
		r := newSplitMix(s.seed, uint64(s.Epoch), math.MaxUint64)
		for i := len(s.shardPerm) - 1; i > 0; i-- {
			j := r.bounded(uint64(i + 1))
			s.shardPerm[i], s.shardPerm[j] = s.shardPerm[j], s.shardPerm[i]
		}
		s.builtEpoch = s.Epoch
		s.builtGroup = -1
	}
	if s.builtGroup == s.Group {
		return nil
	}
	lo := s.Group * l.opt.Window
	hi := min(lo+l.opt.Window, len(shards))
	s.groupCum = s.groupCum[:0]
	s.groupCum = append(s.groupCum, 0)
	for _, sh := range s.shardPerm[lo:hi] {
		s.groupCum = append(s.groupCum, s.groupCum[len(s.groupCum)-1]+shards[sh].Rows)
	}
	n := s.groupCum[len(s.groupCum)-1]
	if n > math.MaxUint32 {
		return fmt.Errorf("loader: source %q: a window of %d shards holds %d documents, too many", s.src.Name, hi-lo, n)
	}
	if int64(cap(s.groupPerm)) >= n {
		s.groupPerm = s.groupPerm[:n]
	} else {
		s.groupPerm = make([]uint32, n)
	}
	for i := range s.groupPerm {
		s.groupPerm[i] = uint32(i)
	}
	r := newSplitMix(s.seed, uint64(s.Epoch), uint64(s.Group))
	for i := len(s.groupPerm) - 1; i > 0; i-- {
		j := r.bounded(uint64(i + 1))
		s.groupPerm[i], s.groupPerm[j] = s.groupPerm[j], s.groupPerm[i]
	}
	s.builtGroup = s.Group
	// Keep only this window's shards decoded, plus the one being packed.
	for k := range s.cache {
		keep := l.cur.Src == s.idx && l.cur.Shard == k
		for _, sh := range s.shardPerm[lo:hi] {
			keep = keep || sh == k
		}
		if !keep {
			delete(s.cache, k)
		}
	}
	return nil
}

// shard returns a decoded shard of s, reading, verifying and caching it.
func (l *Loader) shard(s *srcCursor, i int) (*cachedShard, error) {
	if cs := s.cache[i]; cs != nil {
		return cs, nil
	}
	info := s.src.Manifest.Shards[i]
	ts, err := ReadTokenShard(filepath.Join(s.src.Dir, info.Name), &info, l.mix.VocabSize())
	if err != nil {
		return nil, fmt.Errorf("loader: source %q: %w", s.src.Name, err)
	}
	cs := &cachedShard{ts: ts}
	if l.opt.ValFraction > 0 {
		cs.val = make([]bool, ts.Rows())
		for r := range cs.val {
			cs.val[r] = IsHeldOut(ts.ID(r), l.opt.ValFraction)
		}
	}
	if s.cache == nil {
		s.cache = map[int]*cachedShard{}
	}
	s.cache[i] = cs
	return cs, nil
}

// IsHeldOut reports whether the document with this id belongs to the
// held-out split for a validation fraction.
func IsHeldOut(id string, valFraction float64) bool {
	return mix64(hash64(id)) < uint64(valFraction*(1<<63)*2)
}

// State returns the loader's position, a small JSON document. Restore on a
// loader made with the same mix and options continues exactly from there.
func (l *Loader) State() ([]byte, error) {
	return json.Marshal(loaderState{Version: 1, Fingerprint: l.fp, Batch: l.batch, Tokens: l.tokens, Cur: l.cur, Sources: l.srcs})
}

// Restore moves the loader to a position saved by State.
func (l *Loader) Restore(state []byte) error {
	var st loaderState
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("loader state: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("loader state: version %d not supported", st.Version)
	}
	if st.Fingerprint != l.fp {
		return errors.New("loader state: saved with another mix, other shards or other loader options (seed, rank, world, val split, window)")
	}
	if len(st.Sources) != len(l.srcs) {
		return fmt.Errorf("loader state: %d sources, the mix has %d", len(st.Sources), len(l.srcs))
	}
	for i, s := range st.Sources {
		d := l.srcs[i]
		if s.Group < 0 || s.Group >= l.numGroups(d) || s.Pos < 0 || s.Epoch < 0 {
			return fmt.Errorf("loader state: source %q: position out of range", d.src.Name)
		}
		d.Epoch, d.Group, d.Pos, d.Emitted, d.Taken = s.Epoch, s.Group, s.Pos, s.Emitted, s.Taken
		d.builtEpoch, d.builtGroup, d.scanned = -1, -1, 0
		d.cache = nil
	}
	l.batch, l.tokens = st.Batch, st.Tokens
	l.cur, l.curTS = curDoc{Src: -1}, nil
	if c := st.Cur; c.Src >= 0 {
		if c.Src >= len(l.srcs) || c.Shard < 0 || c.Shard >= len(l.srcs[c.Src].src.Manifest.Shards) {
			return errors.New("loader state: current document out of range")
		}
		cs, err := l.shard(l.srcs[c.Src], c.Shard)
		if err != nil {
			return err
		}
		if c.Row < 0 || c.Row >= cs.ts.Rows() || c.Off < 0 || c.Off >= cs.ts.Len(c.Row) {
			return errors.New("loader state: current document out of range")
		}
		l.cur, l.curTS = c, cs.ts
	}
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
