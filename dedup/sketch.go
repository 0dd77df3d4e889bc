package dedup

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/smelt-dev/smelt/shards"
	"github.com/zeebo/xxh3"
)

// Files of a sketch task's directory. sig.bin and meta.bin hold fixed-size
// records indexed by row, so later steps read any document's signature or
// metadata with one positioned read.
const (
	sigFile    = "sig.bin"  // Perms little-endian uint64 per row (zeros: none)
	metaFile   = "meta.bin" // metaSize bytes per row, see docMeta
	idsFile    = "ids.dat"  // the rows' ids, concatenated
	sketchDone = "sketch.json"
	metaSize   = 48
)

func runFile(run, part int) string { return fmt.Sprintf("run-%04d-%04d.rec", run, part) }

// docMeta is what later steps need of a document besides its signature.
type docMeta struct {
	Exact   [2]uint64
	URL     uint64
	Quality float64 // NaN when unscored
	HasSig  bool
	ID      string
}

const (
	metaHasQuality = 1
	metaHasSig     = 2
)

func putMeta(b []byte, m *docMeta, idOff uint64) {
	binary.LittleEndian.PutUint64(b[0:], m.Exact[0])
	binary.LittleEndian.PutUint64(b[8:], m.Exact[1])
	binary.LittleEndian.PutUint64(b[16:], m.URL)
	binary.LittleEndian.PutUint64(b[24:], math.Float64bits(m.Quality))
	var flags uint32
	if !math.IsNaN(m.Quality) {
		flags |= metaHasQuality
	}
	if m.HasSig {
		flags |= metaHasSig
	}
	binary.LittleEndian.PutUint32(b[32:], flags)
	binary.LittleEndian.PutUint32(b[36:], uint32(len(m.ID)))
	binary.LittleEndian.PutUint64(b[40:], idOff)
}

// sketchInfo is sketchDone's content, written last: its presence with the
// right fingerprint means the task's files are complete.
type sketchInfo struct {
	Fingerprint string `json:"fingerprint"`
	// Input is the input directory the task read (for the store's list).
	Input      string `json:"input,omitempty"`
	Rows       int64  `json:"rows"`
	DataBytes  int64  `json:"data_bytes"`
	Runs       int    `json:"runs"`
	Parts      int    `json:"parts"`
	Perms      int    `json:"perms"`
	Records    int64  `json:"records"`
	Signatures int64  `json:"signatures"`
}

// SketchConfig is one sketch task: the documents of one input directory.
type SketchConfig struct {
	// Input is a finished document-shard directory.
	Input string
	// Task numbers the input among the run's sketch tasks (its references'
	// task).
	Task int
	// Dir receives the task's files.
	Dir string
	// Options are the dedup settings (validated).
	Options Options
	// Parts is the number of bucket partitions the records are cut into.
	Parts int
	// BufferBytes bounds the records held before a sorted run is written
	// (0 = 64 MiB); it bounds the task's memory.
	BufferBytes int64
	// Workers compute signatures (0 = all cores).
	Workers int
	// Progress, if set, gets documents and bytes done out of the totals.
	Progress func(docs, bytes, totalDocs, totalBytes int64)
}

func sketchFingerprint(cfg *SketchConfig, identity []any) (string, error) {
	return shards.Fingerprint("dedup-sketch", struct {
		O     Options `json:"o"`
		Task  int     `json:"task"`
		Parts int     `json:"parts"`
	}{cfg.Options, cfg.Task, cfg.Parts}, identity...)
}

// SketchTask runs one sketch task: it reads the input once and writes every
// document's signature, metadata and id by row, and its keys (LSH band
// keys, exact hash, URL hash) as records sorted by key into one file per
// bucket partition for each run of BufferBytes. A finished task is not
// redone; an unfinished one (killed) starts again from nothing.
func SketchTask(ctx context.Context, cfg SketchConfig) (*sketchInfo, error) {
	opt := cfg.Options
	sk, err := NewSketcher(&opt)
	if err != nil {
		return nil, err
	}
	if cfg.Parts < 1 {
		return nil, fmt.Errorf("dedup: %d bucket partitions", cfg.Parts)
	}
	if cfg.Task < 0 || cfg.Task >= MaxTasks {
		return nil, fmt.Errorf("dedup: task %d: at most %d sketch tasks", cfg.Task, MaxTasks)
	}
	in, err := shards.OpenDocDirs(cfg.Input)
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	defer in.Close()
	fp, err := sketchFingerprint(&cfg, in.Identity())
	if err != nil {
		return nil, err
	}
	if info, err := readSketchInfo(cfg.Dir); err == nil && info.Fingerprint == fp {
		return info, nil
	}
	if err := os.RemoveAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	totalDocs, totalBytes := in.TotalRows(), in.TotalDataBytes()
	if totalDocs >= MaxRows {
		return nil, fmt.Errorf("dedup: %s holds %d documents: at most %d per sketch task", cfg.Input, totalDocs, MaxRows)
	}
	w, err := newSketchWriter(cfg.Dir, opt.Perms)
	if err != nil {
		return nil, err
	}
	defer w.abort()
	limit := cfg.BufferBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	maxRecs := max(int(limit/int64(sortedRecordMem)), 1024)
	buf := make([]sortedRecord, 0, min(maxRecs, 1<<16))
	info := &sketchInfo{Fingerprint: fp, Parts: cfg.Parts, Perms: opt.Perms}
	if abs, err := filepath.Abs(cfg.Input); err == nil {
		info.Input = abs
	}
	spill := func() error {
		if len(buf) == 0 {
			return nil
		}
		slices.SortFunc(buf, func(a, b sortedRecord) int {
			if c := cmp.Compare(a.mk, b.mk); c != 0 {
				return c
			}
			return compareRecords(&a.r, &b.r)
		})
		if err := writeRun(cfg.Dir, info.Runs, cfg.Parts, buf); err != nil {
			return err
		}
		info.Runs++
		info.Records += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	type item struct {
		doc *shards.Document
		k   Sketch
	}
	next := func() (*shards.Document, bool, error) {
		doc, err := in.Next()
		if errors.Is(err, io.EOF) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("dedup: %w", err)
		}
		return doc, true, nil
	}
	f := func(doc *shards.Document) item {
		k := sk.Sketch(doc)
		doc.Text = "" // only the metadata travels on
		doc.Meta = ""
		return item{doc, k}
	}
	var row int64
	emit := func(it item) error {
		ref := MakeRef(cfg.Task, row)
		m := docMeta{Exact: it.k.Exact, URL: it.k.URL, Quality: math.NaN(), HasSig: it.k.Sig != nil, ID: it.doc.ID}
		if it.doc.HasQuality {
			m.Quality = it.doc.Quality
		}
		if err := w.add(&m, it.k.Sig); err != nil {
			return err
		}
		add := func(r record) { buf = append(buf, sortedRecord{r.mk(), r}) }
		if opt.Exact {
			add(record{tag: kindExact << 8, k1: it.k.Exact[0], k2: it.k.Exact[1], ref: ref})
		}
		if opt.URL && it.k.URL != 0 {
			add(record{tag: kindURL << 8, k1: it.k.URL, ref: ref})
		}
		if it.k.Sig != nil {
			info.Signatures++
		}
		if len(it.k.Bands) > 0 {
			digest := sigDigest(it.k.Sig)
			for b, key := range it.k.Bands {
				add(record{tag: kindBand<<8 | uint16(b), k1: key, k2: digest, ref: ref})
			}
		}
		row++
		if cfg.Progress != nil && row%1024 == 0 {
			cfg.Progress(row, totalBytes*row/max(totalDocs, 1), totalDocs, totalBytes)
		}
		if len(buf) >= maxRecs {
			return spill()
		}
		return nil
	}
	if err := shards.OrderedMap(ctx, cfg.Workers, next, f, emit); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if row != totalDocs {
		return nil, fmt.Errorf("dedup: sketched %d of %d documents of %s", row, totalDocs, cfg.Input)
	}
	if err := spill(); err != nil {
		return nil, err
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	info.Rows = row
	info.DataBytes = totalBytes
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	if err := shards.WriteFileAtomic(filepath.Join(cfg.Dir, sketchDone), b); err != nil {
		return nil, err
	}
	if cfg.Progress != nil {
		cfg.Progress(row, totalBytes, totalDocs, totalBytes)
	}
	return info, nil
}

// sigDigest is the 64-bit digest of a whole signature (never 0): the
// order of the documents within an LSH bucket, and equal for identical
// signatures.
func sigDigest(sig []uint64) uint64 {
	var buf [8 * 1024]byte
	b := buf[:8*len(sig)]
	for i, v := range sig {
		binary.LittleEndian.PutUint64(b[8*i:], v)
	}
	return xxh3.Hash(b) | 1
}

func readSketchInfo(dir string) (*sketchInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, sketchDone))
	if err != nil {
		return nil, err
	}
	var info sketchInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("dedup: %s: %w", filepath.Join(dir, sketchDone), err)
	}
	return &info, nil
}

// sortedRecord is a record with its mix key, for sorting.
type sortedRecord struct {
	mk uint64
	r  record
}

const sortedRecordMem = 40

// writeRun writes one sorted run, cut into its partitions.
func writeRun(dir string, run, parts int, recs []sortedRecord) error {
	i := 0
	for p := 0; p < parts; p++ {
		w, err := createRecords(filepath.Join(dir, runFile(run, p)))
		if err != nil {
			return err
		}
		for ; i < len(recs) && partOf(recs[i].mk, parts) == p; i++ {
			if err := w.write(&recs[i].r); err != nil {
				w.abort()
				return err
			}
		}
		if err := w.commit(); err != nil {
			return err
		}
	}
	return nil
}

// sketchWriter writes sig.bin, meta.bin and ids.dat row by row.
type sketchWriter struct {
	files     [3]*shards.AtomicFile
	sig, meta *bufio.Writer
	ids       *bufio.Writer
	idOff     uint64
	perms     int
	sigBuf    []byte
	metaBuf   [metaSize]byte
	committed bool
}

func newSketchWriter(dir string, perms int) (*sketchWriter, error) {
	w := &sketchWriter{perms: perms, sigBuf: make([]byte, 8*perms)}
	for i, name := range []string{sigFile, metaFile, idsFile} {
		f, err := shards.CreateAtomic(filepath.Join(dir, name))
		if err != nil {
			w.abort()
			return nil, err
		}
		w.files[i] = f
	}
	w.sig = bufio.NewWriterSize(w.files[0], 256<<10)
	w.meta = bufio.NewWriterSize(w.files[1], 64<<10)
	w.ids = bufio.NewWriterSize(w.files[2], 64<<10)
	return w, nil
}

func (w *sketchWriter) add(m *docMeta, sig []uint64) error {
	clear(w.sigBuf)
	for j, v := range sig {
		binary.LittleEndian.PutUint64(w.sigBuf[8*j:], v)
	}
	if _, err := w.sig.Write(w.sigBuf); err != nil {
		return err
	}
	putMeta(w.metaBuf[:], m, w.idOff)
	if _, err := w.meta.Write(w.metaBuf[:]); err != nil {
		return err
	}
	w.idOff += uint64(len(m.ID))
	_, err := w.ids.WriteString(m.ID)
	return err
}

func (w *sketchWriter) commit() error {
	for _, b := range []*bufio.Writer{w.sig, w.meta, w.ids} {
		if err := b.Flush(); err != nil {
			return err
		}
	}
	for _, f := range w.files {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	w.committed = true
	return nil
}

func (w *sketchWriter) abort() {
	if w.committed {
		return
	}
	for _, f := range w.files {
		if f != nil {
			f.Abort()
		}
	}
}
