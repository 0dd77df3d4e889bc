package filter

import (
	"bufio"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The decontamination index is one file of hashed n-grams, sorted, with the
// eval record each came from:
//
//	header   128 bytes: magic, n, bucket bits, counts, section offsets,
//	         file size, SHA-256 of everything after the header
//	hashes   entries × uint64, ascending (an n-gram in several records
//	         appears once per record)
//	records  entries × uint32, the record of each hash
//	buckets  (2^bits + 1) × uint32: entries whose hash's top bits are b
//	         lie in [buckets[b], buckets[b+1])
//	names    the eval sets (name, records, n-grams, records too short) and
//	         every record's set and id
//
// All integers are little endian. OpenIndex reads the file into memory and
// verifies it (see OpenIndex for why it is no longer memory-mapped).
// A lookup reads one bucket pair and a few adjacent hashes: two cache
// misses at most. A sorted array was chosen over Badger because the index
// is written once and read-only afterwards, and a Badger Get costs
// microseconds where this costs ~100 ns (see BenchmarkDecontamDrop).

const (
	// indexMagic names the format: version 2 normalises words as GPT-3
	// and lm-eval-harness do (NFKC, punctuation removed, see normWords);
	// a version-1 index is refused with a message to rebuild it.
	indexMagic      = "SMLTDCX2"
	indexHeaderSize = 128
	// DefaultNGram is GPT-3's n-gram length.
	DefaultNGram = 13
	// defaultRunEntries bounds the builder's memory: 4M entries of 12 bytes
	// are sorted in memory and spilled to a temporary run file.
	defaultRunEntries = 4 << 20
)

// ixEntry is one (n-gram hash, record) pair.
type ixEntry struct {
	h   uint64
	rec uint32
}

func cmpEntry(a, b ixEntry) int {
	switch {
	case a.h < b.h:
		return -1
	case a.h > b.h:
		return 1
	case a.rec < b.rec:
		return -1
	case a.rec > b.rec:
		return 1
	}
	return 0
}

// IndexSet describes one eval set of an index.
type IndexSet struct {
	Name string
	// Records counts the set's records, Short those with fewer than n
	// words (they contribute no n-gram).
	Records, Short int64
	// NGrams counts the set's n-grams, one per (n-gram, record) pair.
	NGrams int64
}

// IndexBuilder collects eval records and writes an index. It keeps at most
// RunEntries n-grams in memory, spilling sorted runs to TmpDir, and merges
// them when writing. Record ids are kept in memory (one string each).
type IndexBuilder struct {
	// N is the n-gram length (DefaultNGram when 0).
	N int
	// TmpDir holds the spilled runs ("" = the system's temporary
	// directory).
	TmpDir string
	// RunEntries bounds the in-memory buffer (defaultRunEntries when 0).
	RunEntries int

	sets    []IndexSet
	setIdx  map[string]int
	recSet  []uint32
	recID   []string
	buf     []ixEntry
	runs    []string
	total   int64
	words   []wordSpan
	tmpDir  string
	spilled bool
	written int64
}

// Entries is the number of (n-gram, record) pairs Write wrote.
func (b *IndexBuilder) Entries() int64 { return b.written }

func (b *IndexBuilder) n() int {
	if b.N <= 0 {
		return DefaultNGram
	}
	return b.N
}

// AddSet declares an eval set and returns its number. Names must be unique
// and must not contain '#' (it separates set and record in drop values).
func (b *IndexBuilder) AddSet(name string) (int, error) {
	if name == "" || strings.ContainsAny(name, "#\n") {
		return 0, fmt.Errorf("decontam: eval set name %q: want a non-empty name without '#'", name)
	}
	if b.setIdx == nil {
		b.setIdx = map[string]int{}
	}
	if _, ok := b.setIdx[name]; ok {
		return 0, fmt.Errorf("decontam: eval set %q given twice", name)
	}
	b.setIdx[name] = len(b.sets)
	b.sets = append(b.sets, IndexSet{Name: name})
	return len(b.sets) - 1, nil
}

// Add indexes one eval record of set: the n-grams of its fields taken in
// order as one text (so an n-gram may run from a question into its answer).
func (b *IndexBuilder) Add(set int, id string, fields ...string) error {
	if set < 0 || set >= len(b.sets) {
		return fmt.Errorf("decontam: no eval set %d", set)
	}
	if len(b.recID) == 1<<32-1 {
		return fmt.Errorf("decontam: more than %d eval records", 1<<32-1)
	}
	rec := uint32(len(b.recID))
	b.recID = append(b.recID, id)
	b.recSet = append(b.recSet, uint32(set))
	b.words = b.words[:0]
	for _, f := range fields {
		b.words = normWords(f, b.words)
	}
	s := &b.sets[set]
	s.Records++
	if len(b.words) < b.n() {
		s.Short++
		return nil
	}
	if b.buf == nil {
		// One allocation of the whole buffer: growing it by append would
		// hold the old and new arrays at once. Untouched pages cost no
		// memory, so a small eval set stays small.
		b.buf = make([]ixEntry, 0, b.runEntries())
	}
	var err error
	ngramHashes(b.words, b.n(), func(_ int, h uint64) bool {
		b.buf = append(b.buf, ixEntry{h, rec})
		s.NGrams++
		b.total++
		if len(b.buf) >= b.runEntries() {
			err = b.spill()
		}
		return err == nil
	})
	return err
}

func (b *IndexBuilder) runEntries() int {
	if b.RunEntries <= 0 {
		return defaultRunEntries
	}
	return b.RunEntries
}

// sortDedup sorts the buffer and removes repeated (hash, record) pairs.
func (b *IndexBuilder) sortDedup() {
	slices.SortFunc(b.buf, cmpEntry)
	b.buf = slices.Compact(b.buf)
}

func (b *IndexBuilder) spill() error {
	if b.tmpDir == "" {
		dir, err := os.MkdirTemp(b.TmpDir, "decontam-runs-")
		if err != nil {
			return fmt.Errorf("decontam: %w", err)
		}
		b.tmpDir = dir
	}
	b.sortDedup()
	path := filepath.Join(b.tmpDir, fmt.Sprintf("run-%05d", len(b.runs)))
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("decontam: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var rec [12]byte
	for _, e := range b.buf {
		binary.LittleEndian.PutUint64(rec[:8], e.h)
		binary.LittleEndian.PutUint32(rec[8:], e.rec)
		if _, err := w.Write(rec[:]); err != nil {
			f.Close()
			return fmt.Errorf("decontam: run %s: %w", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("decontam: run %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("decontam: run %s: %w", path, err)
	}
	b.runs = append(b.runs, path)
	b.buf = b.buf[:0]
	b.spilled = true
	return nil
}

// Close removes the builder's temporary runs.
func (b *IndexBuilder) Close() error {
	if b.tmpDir == "" {
		return nil
	}
	err := os.RemoveAll(b.tmpDir)
	b.tmpDir, b.runs = "", nil
	return err
}

// entrySource yields entries in order.
type entrySource interface {
	next() (ixEntry, bool, error)
}

type memSource struct {
	es []ixEntry
	i  int
}

func (m *memSource) next() (ixEntry, bool, error) {
	if m.i >= len(m.es) {
		return ixEntry{}, false, nil
	}
	m.i++
	return m.es[m.i-1], true, nil
}

type runSource struct {
	f    *os.File
	r    *bufio.Reader
	path string
}

func (s *runSource) next() (ixEntry, bool, error) {
	var rec [12]byte
	if _, err := io.ReadFull(s.r, rec[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return ixEntry{}, false, nil
		}
		return ixEntry{}, false, fmt.Errorf("decontam: run %s: %w", s.path, err)
	}
	return ixEntry{binary.LittleEndian.Uint64(rec[:8]), binary.LittleEndian.Uint32(rec[8:])}, true, nil
}

// mergeHeap merges sorted sources.
type mergeHeap struct {
	heads []ixEntry
	srcs  []entrySource
}

func (h *mergeHeap) Len() int           { return len(h.heads) }
func (h *mergeHeap) Less(i, j int) bool { return cmpEntry(h.heads[i], h.heads[j]) < 0 }
func (h *mergeHeap) Swap(i, j int) {
	h.heads[i], h.heads[j] = h.heads[j], h.heads[i]
	h.srcs[i], h.srcs[j] = h.srcs[j], h.srcs[i]
}
func (h *mergeHeap) Push(x any) { panic("unused") }
func (h *mergeHeap) Pop() any {
	n := len(h.heads) - 1
	h.heads, h.srcs = h.heads[:n], h.srcs[:n]
	return nil
}

// bucketBits picks the bucket table size: about four entries a bucket.
func bucketBits(entries int64) uint {
	b := uint(8)
	if entries > 1024 {
		b = uint(bits.Len64(uint64(entries/4))) - 1
	}
	return min(max(b, 8), 28)
}

// hashWriter counts and hashes what goes through it.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (w *hashWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Write merges everything added into an index file at path, atomically
// (temporary file, fsync, rename), and returns the sets it holds.
func (b *IndexBuilder) Write(path string) ([]IndexSet, error) {
	defer b.Close()
	if len(b.sets) == 0 {
		return nil, fmt.Errorf("decontam: no eval sets")
	}
	if b.n() < MinNGram || b.n() > MaxNGram {
		return nil, fmt.Errorf("decontam: n-gram length %d: want %d..%d", b.n(), MinNGram, MaxNGram)
	}
	if b.total >= 1<<32 {
		return nil, fmt.Errorf("decontam: %d n-grams: at most 2^32-1 per index", b.total)
	}
	var srcs []entrySource
	b.sortDedup()
	if b.spilled {
		if len(b.buf) > 0 {
			if err := b.spill(); err != nil {
				return nil, err
			}
		}
		for _, p := range b.runs {
			f, err := os.Open(p)
			if err != nil {
				return nil, fmt.Errorf("decontam: %w", err)
			}
			defer f.Close()
			srcs = append(srcs, &runSource{f: f, r: bufio.NewReaderSize(f, 256<<10), path: p})
		}
	} else {
		srcs = append(srcs, &memSource{es: b.buf})
	}
	dir := filepath.Dir(path)
	// Temporary files a killed earlier run left behind.
	for _, pat := range []string{".tmp-*", ".recs-*"} {
		stale, _ := filepath.Glob(filepath.Join(dir, "."+filepath.Base(path)+pat))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("decontam: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	recTmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".recs-")
	if err != nil {
		return nil, fmt.Errorf("decontam: %w", err)
	}
	defer func() {
		recTmp.Close()
		os.Remove(recTmp.Name())
	}()
	if _, err := tmp.Write(make([]byte, indexHeaderSize)); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	hw := &hashWriter{w: bw, h: sha256.New()}
	rw := bufio.NewWriterSize(recTmp, 1<<20)
	nb := bucketBits(b.total)
	counts := make([]uint32, 1<<nb+1)

	// Merge, dropping repeated pairs across runs.
	mh := &mergeHeap{}
	for _, s := range srcs {
		e, more, err := s.next()
		if err != nil {
			return nil, err
		}
		if more {
			mh.heads = append(mh.heads, e)
			mh.srcs = append(mh.srcs, s)
		}
	}
	heap.Init(mh)
	var entries uint32
	var last ixEntry
	var u8 [8]byte
	var u4 [4]byte
	for mh.Len() > 0 {
		e := mh.heads[0]
		nx, more, err := mh.srcs[0].next()
		if err != nil {
			return nil, err
		}
		if more {
			mh.heads[0] = nx
			heap.Fix(mh, 0)
		} else {
			heap.Pop(mh)
		}
		if entries > 0 && e == last {
			continue
		}
		last = e
		binary.LittleEndian.PutUint64(u8[:], e.h)
		if _, err := hw.Write(u8[:]); err != nil {
			return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
		}
		binary.LittleEndian.PutUint32(u4[:], e.rec)
		if _, err := rw.Write(u4[:]); err != nil {
			return nil, fmt.Errorf("decontam: %s: %w", recTmp.Name(), err)
		}
		counts[e.h>>(64-nb)+1]++
		entries++
	}
	b.buf = nil
	b.written = int64(entries)
	if err := rw.Flush(); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", recTmp.Name(), err)
	}
	hashesOff := int64(indexHeaderSize)
	recsOff := hashesOff + hw.n
	if _, err := recTmp.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decontam: %w", err)
	}
	if _, err := io.Copy(hw, bufio.NewReaderSize(recTmp, 1<<20)); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	bucketsOff := hashesOff + hw.n
	for i := 1; i < len(counts); i++ {
		counts[i] += counts[i-1]
	}
	for _, c := range counts {
		binary.LittleEndian.PutUint32(u4[:], c)
		if _, err := hw.Write(u4[:]); err != nil {
			return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
		}
	}
	namesOff := hashesOff + hw.n
	if err := b.writeNames(hw); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	var hdr [indexHeaderSize]byte
	copy(hdr[:8], indexMagic)
	le := binary.LittleEndian
	le.PutUint32(hdr[8:], uint32(b.n()))
	le.PutUint32(hdr[12:], uint32(nb))
	le.PutUint64(hdr[16:], uint64(entries))
	le.PutUint32(hdr[24:], uint32(len(b.sets)))
	le.PutUint32(hdr[28:], uint32(len(b.recID)))
	le.PutUint64(hdr[32:], uint64(hashesOff))
	le.PutUint64(hdr[40:], uint64(recsOff))
	le.PutUint64(hdr[48:], uint64(bucketsOff))
	le.PutUint64(hdr[56:], uint64(namesOff))
	le.PutUint64(hdr[64:], uint64(hashesOff+hw.n))
	copy(hdr[72:104], hw.h.Sum(nil))
	if _, err := tmp.WriteAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("decontam: %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("decontam: %w", err)
	}
	ok = true
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("decontam: %w", err)
	}
	return append([]IndexSet(nil), b.sets...), nil
}

func (b *IndexBuilder) writeNames(w io.Writer) error {
	bw := bufio.NewWriter(w)
	le := binary.LittleEndian
	var u8 [8]byte
	var u4 [4]byte
	str := func(s string) {
		le.PutUint32(u4[:], uint32(len(s)))
		bw.Write(u4[:])
		bw.WriteString(s)
	}
	for _, s := range b.sets {
		str(s.Name)
		for _, v := range []int64{s.Records, s.Short, s.NGrams} {
			le.PutUint64(u8[:], uint64(v))
			bw.Write(u8[:])
		}
	}
	for i, id := range b.recID {
		le.PutUint32(u4[:], b.recSet[i])
		bw.Write(u4[:])
		str(id)
	}
	return bw.Flush()
}

// Index is an opened decontamination index. It is safe for concurrent use.
type Index struct {
	// N is the n-gram length the index was built with.
	N int
	// Sets are the eval sets, in the order they were added.
	Sets []IndexSet
	// ID is the hex SHA-256 of the index's content: the same eval sets
	// and n give the same ID.
	ID string

	path    string
	data    []byte
	unmap   func() error
	bits    uint
	entries int
	hashes  []byte
	recs    []byte
	buckets []byte
	recSet  []uint32
	recID   []string
	// filter has one bit per 2^fshift hash values: a lookup whose bit is
	// clear misses without touching the mapped file (see buildFilter).
	filter []uint64
	fshift uint
}

// buildFilter sets up the in-memory prefilter: a bitset of about 16 bits
// per entry, indexed by the hash's top bits. Most lookups miss (a crawl
// document rarely shares an n-gram with a benchmark), and a miss then costs
// one cache line of a heap bitset instead of a bucket pair and a run of
// hashes in a large mapped file (TLB and cache misses): on the bench
// documents against 10M n-grams it made the rule 2.2x faster. It reads the
// hash array once (~30 ms per 10M entries).
func (x *Index) buildFilter() {
	fb := uint(6)
	if x.entries > 4 {
		fb = min(max(uint(bits.Len64(uint64(x.entries)*16-1)), 6), 34)
	}
	x.fshift = 64 - fb
	x.filter = make([]uint64, (uint64(1)<<fb)/64)
	le := binary.LittleEndian
	for i := 0; i < x.entries; i++ {
		v := le.Uint64(x.hashes[8*i:]) >> x.fshift
		x.filter[v>>6] |= 1 << (v & 63)
	}
}

// Bounds on an index's n: below 4 words nearly every document would share
// an n-gram with an eval set, and beyond 64 none would (GPT-3 and
// lm-eval-harness use 13, Llama 2 / PaLM style reports 8 to 15).
const (
	MinNGram = 4
	MaxNGram = 64
)

// OpenIndex reads and verifies an index written by IndexBuilder.Write: the
// header's sizes and offsets against the file's length (before anything is
// allocated for them), the SHA-256 of everything after the header, the
// bucket table, the hashes' order and every record id. Any fault gives an
// error naming the file and the byte offset.
//
// The index is read into memory rather than memory-mapped: a mapped file
// truncated while a filter runs kills the process with SIGBUS, which no
// bounds check can prevent, and verifying the hash reads every byte at
// open anyway. It costs the index's size in resident memory per process
// (12 bytes an n-gram), shared by all of the process's workers.
func OpenIndex(path string) (*Index, error) {
	data, err := readIndexFile(path)
	if err != nil {
		return nil, err
	}
	x, err := parseIndex(path, data)
	if err != nil {
		return nil, err
	}
	x.unmap = func() error { return nil }
	x.buildFilter()
	return x, nil
}

// readIndexFile reads path after checking that its header's file size is
// the file's length, so a crafted size never decides an allocation.
func readIndexFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decontam index: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("decontam index: %w", err)
	}
	var hdr [indexHeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:8]) != indexMagic {
		if err == nil && string(hdr[:6]) == indexMagic[:6] {
			return nil, fmt.Errorf("decontam index %s: byte 0: format %q, this smelt reads %q (the word normalisation changed): rebuild it with smelt decontam index",
				path, hdr[:8], indexMagic)
		}
		return nil, fmt.Errorf("decontam index %s: byte 0: not a smelt decontamination index (bad magic)", path)
	}
	if size := binary.LittleEndian.Uint64(hdr[64:]); size != uint64(fi.Size()) {
		return nil, fmt.Errorf("decontam index %s: byte 64: header says %d bytes, file has %d (truncated?)", path, size, fi.Size())
	}
	if fi.Size() != int64(int(fi.Size())) {
		return nil, fmt.Errorf("decontam index %s: %d bytes is too large", path, fi.Size())
	}
	data := make([]byte, fi.Size())
	copy(data, hdr[:])
	if _, err := io.ReadFull(f, data[indexHeaderSize:]); err != nil {
		return nil, fmt.Errorf("decontam index %s: byte %d: %w", path, indexHeaderSize, err)
	}
	return data, nil
}

func parseIndex(path string, data []byte) (*Index, error) {
	bad := func(off int64, format string, a ...any) error {
		return fmt.Errorf("decontam index %s: byte %d: %s", path, off, fmt.Sprintf(format, a...))
	}
	if len(data) < indexHeaderSize || string(data[:8]) != indexMagic {
		return nil, bad(0, "not a smelt decontamination index (bad magic)")
	}
	le := binary.LittleEndian
	n := le.Uint32(data[8:])
	x := &Index{path: path, data: data, bits: uint(le.Uint32(data[12:]))}
	entries := le.Uint64(data[16:])
	nsets, nrecs := le.Uint32(data[24:]), le.Uint32(data[28:])
	hashesOff, recsOff, bucketsOff, namesOff, size := le.Uint64(data[32:]), le.Uint64(data[40:]),
		le.Uint64(data[48:]), le.Uint64(data[56:]), le.Uint64(data[64:])
	x.ID = hex.EncodeToString(data[72:104])
	if size != uint64(len(data)) {
		return nil, bad(64, "header says %d bytes, file has %d (truncated?)", size, len(data))
	}
	if n < MinNGram || n > MaxNGram {
		return nil, bad(8, "n-gram length %d: want %d..%d", n, MinNGram, MaxNGram)
	}
	x.N = int(n)
	if entries >= 1<<32 || x.bits != bucketBits(int64(entries)) ||
		hashesOff != indexHeaderSize || recsOff != hashesOff+8*entries ||
		bucketsOff != recsOff+4*entries || namesOff != bucketsOff+4*(1<<x.bits+1) || namesOff > size {
		return nil, bad(12, "inconsistent header (bucket bits %d, %d entries, offsets %d %d %d %d, %d bytes)",
			x.bits, entries, hashesOff, recsOff, bucketsOff, namesOff, size)
	}
	// Each set takes at least 28 bytes of the names section, each record 8.
	if nsets == 0 || uint64(nsets)*28+uint64(nrecs)*8 > size-namesOff {
		return nil, bad(24, "%d sets and %d records do not fit in the %d-byte names section", nsets, nrecs, size-namesOff)
	}
	if sum := sha256.Sum256(data[indexHeaderSize:]); hex.EncodeToString(sum[:]) != x.ID {
		return nil, bad(72, "SHA-256 of the content is %x, the header says %s (corrupt or edited)", sum, x.ID)
	}
	x.entries = int(entries)
	x.hashes = data[hashesOff:recsOff]
	x.recs = data[recsOff:bucketsOff]
	x.buckets = data[bucketsOff:namesOff]
	if err := x.verifyTables(bucketsOff, recsOff, nrecs); err != nil {
		return nil, bad(err.off, "%s", err.msg)
	}
	p := namesOff
	u32 := func() (uint32, error) {
		if p+4 > size {
			return 0, bad(int64(p), "names section cut short")
		}
		v := le.Uint32(data[p:])
		p += 4
		return v, nil
	}
	str := func() (string, error) {
		n, err := u32()
		if err != nil {
			return "", err
		}
		if uint64(n) > size-p {
			return "", bad(int64(p), "name of %d bytes runs past the end", n)
		}
		s := string(data[p : p+uint64(n)])
		p += uint64(n)
		return s, nil
	}
	var records int64
	for range nsets {
		name, err := str()
		if err != nil {
			return nil, err
		}
		if p+24 > size {
			return nil, bad(int64(p), "set counts cut short")
		}
		set := IndexSet{Name: name, Records: int64(le.Uint64(data[p:])),
			Short: int64(le.Uint64(data[p+8:])), NGrams: int64(le.Uint64(data[p+16:]))}
		if set.Records < 0 || set.Short < 0 || set.Short > set.Records || set.NGrams < 0 {
			return nil, bad(int64(p), "set %q: counts %d records, %d short, %d n-grams", name, set.Records, set.Short, set.NGrams)
		}
		records += set.Records
		x.Sets = append(x.Sets, set)
		p += 24
	}
	if records != int64(nrecs) {
		return nil, bad(28, "the sets count %d records, the header %d", records, nrecs)
	}
	x.recSet = make([]uint32, 0, nrecs)
	x.recID = make([]string, 0, nrecs)
	for range nrecs {
		s, err := u32()
		if err != nil {
			return nil, err
		}
		if s >= nsets {
			return nil, bad(int64(p-4), "record of set %d, index has %d sets", s, nsets)
		}
		id, err := str()
		if err != nil {
			return nil, err
		}
		x.recSet = append(x.recSet, s)
		x.recID = append(x.recID, id)
	}
	if p != size {
		return nil, bad(int64(p), "%d bytes after the names", size-p)
	}
	return x, nil
}

type tableError struct {
	off int64
	msg string
}

// verifyTables checks what lookups rely on: the bucket table starts at 0,
// never decreases and ends at the entry count; the hashes ascend and each
// lies in its bucket; every record id is below nrecs.
func (x *Index) verifyTables(bucketsOff, recsOff uint64, nrecs uint32) *tableError {
	le := binary.LittleEndian
	nb := len(x.buckets)/4 - 1
	prev := uint32(0)
	for b := 0; b <= nb; b++ {
		v := le.Uint32(x.buckets[4*b:])
		if (b == 0 && v != 0) || v < prev || v > uint32(x.entries) || (b == nb && v != uint32(x.entries)) {
			return &tableError{int64(bucketsOff) + 4*int64(b), fmt.Sprintf("bucket table entry %d is %d (previous %d, %d entries)", b, v, prev, x.entries)}
		}
		for i := prev; i < v; i++ {
			if h := le.Uint64(x.hashes[8*i:]); h>>(64-x.bits) != uint64(b-1) {
				return &tableError{indexHeaderSize + 8*int64(i), fmt.Sprintf("hash %016x in bucket %d", h, b-1)}
			}
		}
		prev = v
	}
	var last uint64
	for i := 0; i < x.entries; i++ {
		h := le.Uint64(x.hashes[8*i:])
		if i > 0 && h < last {
			return &tableError{indexHeaderSize + 8*int64(i), "hashes out of order"}
		}
		last = h
		if r := le.Uint32(x.recs[4*i:]); r >= nrecs {
			return &tableError{int64(recsOff) + 4*int64(i), fmt.Sprintf("record %d, index has %d", r, nrecs)}
		}
	}
	return nil
}

// Entries is the number of (n-gram, record) pairs in the index.
func (x *Index) Entries() int { return x.entries }

// Records is the number of eval records in the index.
func (x *Index) Records() int { return len(x.recID) }

// Record returns a record's eval set and id, or two empty strings for a
// record the index does not have.
func (x *Index) Record(rec int) (set, id string) {
	if rec < 0 || rec >= len(x.recID) {
		return "", ""
	}
	return x.Sets[x.recSet[rec]].Name, x.recID[rec]
}

// has reports whether h is in the index; when it is and f is not nil, f
// is called with each record holding it, in order, until it returns false.
func (x *Index) has(h uint64, f func(rec int) bool) bool {
	if x.filter != nil {
		if v := h >> x.fshift; x.filter[v>>6]&(1<<(v&63)) == 0 {
			return false
		}
	}
	b := h >> (64 - x.bits)
	le := binary.LittleEndian
	lo, hi := int(le.Uint32(x.buckets[4*b:])), int(le.Uint32(x.buckets[4*b+4:]))
	for i := lo; i < hi; i++ {
		v := le.Uint64(x.hashes[8*i:])
		if v < h {
			continue
		}
		if v > h {
			return false
		}
		if f != nil {
			for j := i; j < hi && le.Uint64(x.hashes[8*j:]) == h; j++ {
				if !f(int(le.Uint32(x.recs[4*j:]))) {
					break
				}
			}
		}
		return true
	}
	return false
}

// Close unmaps the index.
func (x *Index) Close() error {
	if x.unmap == nil {
		return nil
	}
	err := x.unmap()
	x.unmap, x.data, x.hashes, x.recs, x.buckets = nil, nil, nil, nil, nil
	return err
}

// syncDir fsyncs a directory so that a rename in it is durable. (The index
// is written with WriteAt for its header, which shards.AtomicFile does not
// offer, so it does its own temp-fsync-rename.)
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
