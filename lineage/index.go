package lineage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

// IndexDir is the index's directory inside the run directory.
var IndexDir = filepath.Join(pipelines.StateDir, "lineage")

// Event is one step of a document's path through a run.
type Event struct {
	// Step is the run's step ("ingest-cc", "filter-cc", "dedup",
	// "tokenize", "export-megatron") or "takedown".
	Step string `json:"step"`
	Kind string `json:"kind"`
	// Dir is the task's output directory, relative to the run directory;
	// Shard and Row place the document in it (the dropped/ side output
	// when Kept is false).
	Dir   string `json:"dir,omitempty"`
	Shard string `json:"shard,omitempty"`
	Row   int64  `json:"row"`
	Kept  bool   `json:"kept"`
	// Reason, Value and DupOf are a drop's (DupOf: the dedup survivor).
	Reason string `json:"reason,omitempty"`
	Value  string `json:"value,omitempty"`
	DupOf  string `json:"dup_of,omitempty"`
	// Input is the ingest input file and RecordKey the record's identity
	// in it (WARC-Record-ID, JSON id, line). Ingest does not record byte
	// offsets per document.
	Input     string `json:"input,omitempty"`
	URL       string `json:"url,omitempty"`
	RecordKey string `json:"record_key,omitempty"`
	// Rules are a filter step's rules with their decisions.
	Rules []RuleDecision `json:"rules,omitempty"`
	// Quality is the classifier's score, when it scored the document.
	Quality *float64 `json:"quality,omitempty"`
	// Tokens and TokenOffset: the document's tokens (end-of-text
	// included) and where they start in the token shard's token stream.
	Tokens      int64 `json:"tokens,omitempty"`
	TokenOffset int64 `json:"token_offset,omitempty"`
	// File, ByteOffset, Length: an export's file and the document's
	// bytes in it (token formats); DocIndex is the Megatron document
	// index (token formats) or the row (Parquet, JSONL).
	Format     string `json:"format,omitempty"`
	File       string `json:"file,omitempty"`
	ByteOffset int64  `json:"byte_offset,omitempty"`
	Length     int64  `json:"length,omitempty"`
	DocIndex   int64  `json:"doc_index"`
	// Time is a takedown's time.
	Time string `json:"time,omitempty"`
	// Bytes, Source and Lang are a document event's size in its shard
	// (shards.DocBytes), source and language: what a takedown's new
	// stats subtract, so that planning it reads no shard.
	Bytes  int64  `json:"bytes,omitempty"`
	Source string `json:"source,omitempty"`
	Lang   string `json:"lang,omitempty"`
}

// RuleDecision is one filter rule's decision on a document: "pass",
// "drop" (with the rule's value) or "not run" (after the dropping rule).
type RuleDecision struct {
	Rule     string `json:"rule"`
	Decision string `json:"decision"`
	Value    string `json:"value,omitempty"`
}

// Lineage is one document's path.
type Lineage struct {
	ID     string  `json:"id"`
	Source string  `json:"source,omitempty"`
	URL    string  `json:"url,omitempty"`
	Events []Event `json:"events"`
	// Status sums the path up: kept (in the token shards), dropped by a
	// step (with the reason), or taken down.
	Status string `json:"status"`
	// Cluster lists the documents dedup dropped as duplicates of this one.
	Cluster []string `json:"cluster,omitempty"`
}

// Index is an opened lineage index.
type Index struct {
	run *pipelines.Run
	db  *indexFile
	// taken are the ids in the dedup store's takedown list (read once).
	takenOnce sync.Once
	taken     map[string]bool
}

// takenDown reports whether id is in the takedown list of the run's dedup
// store: a document an earlier run's takedown removed.
func (ix *Index) takenDown(id string) bool {
	ix.takenOnce.Do(func() {
		ix.taken = map[string]bool{}
		if d := ix.run.Recipe.Dedup; d != nil && d.Store != "" {
			es, err := ReadList(filepath.Join(d.Store, TakedownListFile))
			if err != nil {
				slog.Warn("lineage: takedown list unreadable", "err", err)
			}
			for _, e := range es {
				ix.taken[e.ID] = true
			}
		}
	})
	return ix.taken[id]
}

// Keys: "d" ID 0 NNN -> Event (NNN orders the events); "u" URL 0 ID;
// "h" reversed host 0 ID; "c" survivor 0 member; "s" -> stamp.
const (
	pDoc     = "d"
	pURL     = "u"
	pHost    = "h"
	pCluster = "c"
	kStamp   = "s"
)

// indexVersion is the index's format; it enters the stamp. 2: document
// events carry their bytes, source and language.
const indexVersion = 2

// Stamp identifies the state of a run's outputs: the sha256 of every
// manifest, export.json and takedown.json under the run directory (the
// state directory left out).
func Stamp(runDir string) (string, error) {
	h := sha256.New()
	// The index's own format: an index built by an older smelt is rebuilt.
	fmt.Fprintf(h, "lineage index v%d\n", indexVersion)
	var files []string
	err := filepath.WalkDir(runDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != runDir && d.Name() == pipelines.StateDir {
				return filepath.SkipDir
			}
			return nil
		}
		switch d.Name() {
		case shards.ManifestName, export.SidecarName, TakedownFile:
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(runDir, f)
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "%s %x\n", rel, sum)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Open opens the run's lineage index, building it first when it is missing
// or stale (the run's outputs changed since it was built).
func Open(ctx context.Context, runDir string) (*Index, error) {
	run, err := pipelines.OpenExisting(runDir, nil)
	if err != nil {
		return nil, err
	}
	stamp, err := Stamp(run.Dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(run.Dir, IndexDir, IndexFile)
	if db, err := openIndexFile(path); err == nil {
		have, _, err := db.get([]byte(kStamp))
		if err == nil && string(have) == stamp {
			return &Index{run: run, db: db}, nil
		}
		db.close()
	} else if !errors.Is(err, os.ErrNotExist) {
		slog.Warn("lineage: rebuilding an unreadable index", "err", err)
	}
	if err := Build(ctx, run, stamp); err != nil {
		return nil, err
	}
	db, err := openIndexFile(path)
	if err != nil {
		return nil, err
	}
	return &Index{run: run, db: db}, nil
}

// Close closes the index.
func (ix *Index) Close() error { return ix.db.close() }

// Run is the index's run.
func (ix *Index) Run() *pipelines.Run { return ix.run }

// builder collects index entries and bulk-loads them (sorter).
type builder struct {
	run *pipelines.Run
	s   *sorter
	n   uint64 // events so far: numbers each document's events in build order
	err error
	// key and value are event's scratch buffers.
	key, value []byte
}

func (b *builder) set(k []byte, v []byte) {
	if b.err == nil {
		b.err = b.s.add(k, v)
	}
}

func key(parts ...string) []byte {
	return []byte(strings.Join(parts, "\x00"))
}

// event adds an event of document id. Events of one document are numbered
// in the order the build sees them (steps in plan order): one counter for
// the whole build, so that no per-document state grows with the run.
func (b *builder) event(id string, e Event) {
	n := b.n
	b.n++
	data, err := appendEvent(b.value[:0], &e)
	if err != nil {
		b.err = err
		return
	}
	b.value = data
	// The key: "d", id and the event's number in 12 digits, NUL between.
	k := append(b.key[:0], pDoc...)
	k = append(k, 0)
	k = append(k, id...)
	k = append(k, 0)
	var num [20]byte
	digits := strconv.AppendUint(num[:0], n, 10)
	for range 12 - len(digits) {
		k = append(k, '0')
	}
	k = append(k, digits...)
	b.key = k
	b.set(k, data) // the sorter copies both
}

// reverseHost turns "www.example.com" into "com.example.www", so that a
// domain's subdomains share its key prefix.
func reverseHost(h string) string {
	labels := strings.Split(strings.TrimSuffix(strings.ToLower(h), "."), ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, ".")
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(p.Hostname()), ".")
}

// Build (re)builds the run's index: its entries are sorted on disk and
// bulk-loaded (indexsort.go), so that its memory does not grow with the
// run.
func Build(ctx context.Context, run *pipelines.Run, stamp string) error {
	dir := filepath.Join(run.Dir, IndexDir)
	tmp := dir + ".tmp"
	sortDir := dir + ".sort"
	for _, d := range []string{tmp, sortDir} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(sortDir, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(sortDir)
	b := &builder{run: run, s: &sorter{dir: sortDir}}
	err := b.build(ctx)
	if err == nil {
		b.set([]byte(kStamp), []byte(stamp))
		err = b.err
	}
	if err == nil {
		err = loadIndex(tmp, b.s, run.Dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("lineage index: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// loadIndex writes the sorted entries into a new index file in dir.
func loadIndex(dir string, s *sorter, runDir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w, err := newIndexWriter(filepath.Join(dir, IndexFile))
	if err != nil {
		return err
	}
	docs, keys := 0, 0
	var lastDoc []byte
	err = s.merge(func(k, v []byte) error {
		w.add(k, v)
		keys++
		// Keys "d" 0 ID 0 NNN: count the documents.
		if len(k) > 2 && k[0] == pDoc[0] && k[1] == 0 {
			id := k[2:bytes.LastIndexByte(k, 0)]
			if !bytes.Equal(id, lastDoc) {
				docs++
				lastDoc = append(lastDoc[:0], id...)
			}
		}
		return nil
	})
	if err != nil {
		w.abort()
		return err
	}
	if err := w.finish(); err != nil {
		return err
	}
	slog.Info("lineage index built", "run", runDir, "docs", docs, "keys", keys)
	return nil
}

func (b *builder) build(ctx context.Context) error {
	run := b.run
	// Earlier takedowns: the documents' paths before they were removed.
	recs, err := ReadTakedowns(run.Dir)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		for _, d := range rec.Documents {
			for _, e := range d.Events {
				b.event(d.ID, e)
			}
			b.event(d.ID, Event{Step: "takedown", Kind: "takedown", Time: rec.Time, Reason: "takedown", Value: rec.Request.String()})
			b.keys(d.ID, d.URL)
		}
	}
	var tokenSteps []*pipelines.Step
	for _, s := range run.Plan.Steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch s.Kind {
		case pipelines.KindIngest, pipelines.KindFilter, pipelines.KindDedup:
			for _, t := range s.Tasks {
				if err := b.docDir(s, t.Out); err != nil {
					return err
				}
			}
		case pipelines.KindTokenize:
			tokenSteps = append(tokenSteps, s)
		}
	}
	for _, s := range tokenSteps {
		if err := b.tokens(ctx, s); err != nil {
			return err
		}
	}
	for _, s := range run.Plan.Steps {
		if s.Kind == pipelines.KindExport {
			if err := b.docExport(s); err != nil {
				return err
			}
		}
	}
	return b.err
}

func (b *builder) keys(id, u string) {
	if u == "" {
		return
	}
	b.set(key(pURL, u, id), nil)
	if h := hostOf(u); h != "" {
		b.set(key(pHost, reverseHost(h), id), nil)
	}
}

// filterRules are the rule names of a filter step's source, in order, with
// the classifier's keep policy last when it applies.
func (b *builder) filterRules(s *pipelines.Step) []string {
	var rules []string
	for _, src := range b.run.Recipe.Sources {
		if src.Name == s.Source && src.Filter != nil {
			rules = append(rules, src.Filter.Rules...)
		}
	}
	if c := b.run.Recipe.Classifier; c != nil {
		for _, n := range c.ApplyTo {
			if n == s.Source {
				rules = append(rules, "classifier")
			}
		}
	}
	return rules
}

// docDir indexes a document task directory and its dropped side output.
func (b *builder) docDir(s *pipelines.Step, rel string) error {
	dir := filepath.Join(b.run.Dir, rel)
	if !finished(dir) {
		return nil // a task of an unfinished run: nothing of it to show yet
	}
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return err
	}
	// Ingest writes every input's documents in input order: the input of a
	// row follows from the inputs' document counts.
	var inputs []string
	var counts []int64
	if s.Kind == pipelines.KindIngest {
		for _, in := range m.Inputs {
			inputs, counts = append(inputs, in.Path), append(counts, in.Documents)
		}
	}
	var row int64
	rules := b.filterRules(s)
	err = forEachDocLengths(dir, m, func(shard string, r int64, d *shards.Document) {
		e := Event{Step: s.Name, Kind: s.Kind, Dir: rel, Shard: shard, Row: r, Kept: true,
			Bytes: shards.DocBytes(d), Source: d.Source, Lang: d.Lang}
		if s.Kind == pipelines.KindIngest {
			e.Input = inputOf(inputs, counts, row)
			e.RecordKey = recordKey(d.Meta)
			e.URL = d.URL
			b.keys(d.ID, d.URL)
		}
		if s.Kind == pipelines.KindFilter {
			for _, r := range rules {
				e.Rules = append(e.Rules, RuleDecision{Rule: r, Decision: "pass"})
			}
		}
		if d.HasQuality {
			q := d.Quality
			e.Quality = &q
		}
		row++
		b.event(d.ID, e)
	})
	if err != nil {
		return err
	}
	ddir := filepath.Join(dir, shards.DroppedDir)
	dm, err := shards.ReadManifest(ddir)
	if err != nil {
		if _, serr := os.Stat(ddir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return forEachDocLengths(ddir, dm, func(shard string, r int64, d *shards.Document) {
		e := Event{Step: s.Name, Kind: s.Kind, Dir: filepath.Join(rel, shards.DroppedDir), Shard: shard, Row: r,
			Bytes: shards.DocBytes(d), Source: d.Source, Lang: d.Lang}
		if d.Drop != nil {
			e.Reason, e.Value, e.DupOf = d.Drop.Reason, d.Drop.Value, d.Drop.DupOf
		}
		if s.Kind == pipelines.KindFilter {
			e.Rules = ruleDecisions(rules, e.Reason, e.Value)
		}
		if d.HasQuality {
			q := d.Quality
			e.Quality = &q
		}
		if s.Kind == pipelines.KindIngest {
			b.keys(d.ID, d.URL)
			e.URL = d.URL
		}
		if e.DupOf != "" {
			b.set(key(pCluster, e.DupOf, d.ID), []byte(e.Reason))
		}
		b.event(d.ID, e)
	})
}

// ruleDecisions marks the rules before the one whose reason dropped the
// document as passed and the ones after as not run. A reason names its
// rule before the "/" ("gopher/too_few_words" is gopher_quality's or
// gopher_repetition's: the first rule that declares it).
func ruleDecisions(rules []string, reason, value string) []RuleDecision {
	hit := ruleOf(rules, reason)
	var out []RuleDecision
	state := "pass"
	for _, r := range rules {
		switch {
		case r == hit:
			out = append(out, RuleDecision{Rule: r, Decision: "drop", Value: reason + " " + value})
			state = "not run"
		default:
			out = append(out, RuleDecision{Rule: r, Decision: state})
		}
	}
	if hit == "" {
		out = append(out, RuleDecision{Rule: "?", Decision: "drop", Value: reason + " " + value})
	}
	return out
}

// ruleOf finds which of rules produces reason, by the filter package's
// rule reasons.
func ruleOf(rules []string, reason string) string {
	for _, r := range rules {
		if ruleReasons(r)[reason] {
			return r
		}
	}
	return ""
}

func inputOf(inputs []string, counts []int64, row int64) string {
	for i, n := range counts {
		if row < n {
			return inputs[i]
		}
		row -= n
	}
	return ""
}

func recordKey(meta string) string {
	if meta == "" {
		return ""
	}
	var m struct {
		Key string `json:"record_key"`
	}
	if json.Unmarshal([]byte(meta), &m) != nil {
		return ""
	}
	return m.Key
}

// finished reports whether dir holds a finished shard directory.
func finished(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, shards.ManifestName))
	return err == nil
}

// forEachDoc calls fn for every document of a document-shard directory,
// with its shard and row.
func forEachDoc(dir string, m *shards.Manifest, fn func(shard string, row int64, d *shards.Document)) error {
	return eachDoc(dir, m, shards.OpenDocShardInfo, fn)
}

// forEachDocLengths is forEachDoc for a caller that needs each document's
// text length (shards.DocBytes) but not its text: the text is not
// decompressed, and d.Text holds zero bytes of its length
// (shards.OpenDocShardLengths).
func forEachDocLengths(dir string, m *shards.Manifest, fn func(shard string, row int64, d *shards.Document)) error {
	return eachDoc(dir, m, shards.OpenDocShardLengths, fn)
}

func eachDoc(dir string, m *shards.Manifest, open func(string, shards.ShardInfo, bool) (shards.DocSource, error), fn func(shard string, row int64, d *shards.Document)) error {
	for _, s := range m.Shards {
		r, err := open(filepath.Join(dir, s.Name), s, false)
		if err != nil {
			return err
		}
		var row int64
		for {
			d, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("%s: %w", filepath.Join(dir, s.Name), err)
			}
			// The fast reader's strings point into the record batch's
			// decoded block: a string kept past the call (the index's
			// per-id counters, map keys) would keep the whole block, and so
			// the whole run, in memory. The small fields are copied; a
			// caller that keeps Text copies it.
			d.ID, d.Source, d.URL, d.Date = strings.Clone(d.ID), strings.Clone(d.Source), strings.Clone(d.URL), strings.Clone(d.Date)
			d.Lang, d.Meta = strings.Clone(d.Lang), strings.Clone(d.Meta)
			if d.Drop != nil {
				d.Drop.Reason, d.Drop.Value, d.Drop.DupOf = strings.Clone(d.Drop.Reason), strings.Clone(d.Drop.Value), strings.Clone(d.Drop.DupOf)
			}
			fn(s.Name, row, d)
			row++
		}
		r.Close()
	}
	return nil
}

func readExport(run *pipelines.Run, step string) (*export.Provenance, error) {
	data, err := os.ReadFile(filepath.Join(run.Dir, step, export.SidecarName))
	if err != nil {
		return nil, err
	}
	var p export.Provenance
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(run.Dir, step, export.SidecarName), err)
	}
	return &p, nil
}

// resolveDir maps an export input directory to the run's task output it
// names: export.json records absolute paths, and a run directory that was
// moved or copied still holds its inputs under its own task directories.
func resolveDir(run *pipelines.Run, dir string) string {
	dir = filepath.Clean(dir)
	for _, s := range run.Plan.Steps {
		for _, t := range s.Tasks {
			if dir == filepath.Join(run.Dir, t.Out) || strings.HasSuffix(dir, string(filepath.Separator)+filepath.Clean(t.Out)) {
				return filepath.Join(run.Dir, t.Out)
			}
		}
	}
	return dir
}

// binState is a token export's running position: per output file, the
// bytes and documents written so far.
type binState struct {
	step   string
	prov   *export.Provenance
	width  int64
	header int64
	dirs   map[string]string // input dir -> input name
	bytes  map[string]int64
	docs   map[string]int64
	row    map[string]int64 // parquet tokens: file rows
}

// tokens indexes the token shards of the tokenize step and, in the same
// pass, every token export's positions (the exports read the tokenize
// tasks' outputs in the same order).
func (b *builder) tokens(ctx context.Context, s *pipelines.Step) error {
	var exps []*binState
	for _, es := range b.run.Plan.Steps {
		if es.Kind != pipelines.KindExport {
			continue
		}
		p, err := readExport(b.run, es.Name)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if p.Tokenizer == nil {
			continue
		}
		st := &binState{step: es.Name, prov: p, width: 2, dirs: map[string]string{}, bytes: map[string]int64{}, docs: map[string]int64{}, row: map[string]int64{}}
		if p.TokenDType != "uint16" {
			st.width = 4
		}
		if p.Format == export.FormatLLMC {
			st.header = 1024
		}
		for _, in := range p.Inputs {
			st.dirs[resolveDir(b.run, in.Dir)] = in.Name
		}
		exps = append(exps, st)
	}
	pqFile := 0
	for _, t := range s.Tasks {
		dir := filepath.Join(b.run.Dir, t.Out)
		if !finished(dir) {
			continue
		}
		m, err := shards.ReadManifest(dir)
		if err != nil {
			return err
		}
		vocab := 0
		if m.Tokenizer != nil {
			vocab = m.Tokenizer.VocabSize
		}
		for _, si := range m.Shards {
			if err := ctx.Err(); err != nil {
				return err
			}
			info := si
			ts, err := shards.ReadTokenShard(filepath.Join(dir, si.Name), &info, vocab)
			if err != nil {
				return err
			}
			var off int64
			for i := 0; i < ts.Rows(); i++ {
				id, n := ts.ID(i), int64(ts.Len(i))
				b.event(id, Event{Step: s.Name, Kind: s.Kind, Dir: t.Out, Shard: si.Name, Row: int64(i), Kept: true, Tokens: n, TokenOffset: off})
				off += n
				for _, x := range exps {
					name, ok := x.dirs[filepath.Clean(dir)]
					if !ok {
						continue
					}
					var file string
					switch x.prov.Format {
					case export.FormatMegatron:
						file = name + ".bin"
					case export.FormatNanoGPT, export.FormatLLMC:
						file = "train.bin"
						if shards.IsHeldOut(id, x.prov.Options.ValFraction) {
							file = "val.bin"
						}
					case export.FormatParquet:
						file = fmt.Sprintf("part-%05d.parquet", pqFile)
						b.event(id, Event{Step: x.step, Kind: pipelines.KindExport, Format: string(x.prov.Format), File: file, DocIndex: int64(i)})
						continue
					default:
						continue
					}
					e := Event{Step: x.step, Kind: pipelines.KindExport, Format: string(x.prov.Format), File: file,
						ByteOffset: x.header + x.bytes[file], Length: n * x.width, DocIndex: x.docs[file]}
					x.bytes[file] += n * x.width
					x.docs[file]++
					b.event(id, e)
				}
			}
			pqFile++
		}
	}
	return b.err
}

// docExport indexes a document export (JSONL, Parquet of documents): one
// file per input shard, numbered over the inputs, rows in order.
func (b *builder) docExport(s *pipelines.Step) error {
	p, err := readExport(b.run, s.Name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || p.Tokenizer != nil {
		return err
	}
	ext := ".parquet"
	if p.Format == export.FormatJSONL {
		ext = ".jsonl.zst"
		if p.Options.Compression == "gzip" {
			ext = ".jsonl.gz"
		}
	}
	k := 0
	for _, in := range p.Inputs {
		dir := resolveDir(b.run, in.Dir)
		m, err := shards.ReadManifest(dir)
		if err != nil {
			return err
		}
		for _, si := range m.Shards {
			file := fmt.Sprintf("part-%05d%s", k, ext)
			k++
			err := forEachDocLengths(dir, &shards.Manifest{Shards: []shards.ShardInfo{si}}, func(_ string, row int64, d *shards.Document) {
				b.event(d.ID, Event{Step: s.Name, Kind: pipelines.KindExport, Format: string(p.Format), File: file, DocIndex: row})
			})
			if err != nil {
				return err
			}
		}
	}
	return b.err
}

// Query selects documents by id, URL or domain (the domain and its
// subdomains); exactly one is set.
type Query struct {
	ID, URL, Domain string
}

// Lookup returns the lineage of every document the query matches, in id
// order, at most limit (0 = no limit).
func (ix *Index) Lookup(q Query, limit int) ([]*Lineage, error) {
	var out []*Lineage
	err := ix.Each(q, limit, func(l *Lineage) error {
		out = append(out, l)
		return nil
	})
	if out == nil && err == nil {
		out = []*Lineage{}
	}
	return out, err
}

// Each calls fn with the lineage of each document q matches, in id order
// (at most limit documents; 0: all), one at a time: a query that matches
// a whole run holds one document's lineage at a time, and the ids.
func (ix *Index) Each(q Query, limit int, fn func(*Lineage) error) error {
	ids, err := ix.ids(q, limit)
	if err != nil {
		return err
	}
	for _, id := range ids {
		l, err := ix.lineage(id)
		if err != nil {
			return err
		}
		if l != nil {
			if err := fn(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// ids lists the ids a query matches.
func (ix *Index) ids(q Query, limit int) ([]string, error) {
	var prefixes [][]byte
	switch {
	case q.ID != "":
		return []string{q.ID}, nil
	case q.URL != "":
		prefixes = [][]byte{key(pURL, q.URL, "")}
	case q.Domain != "":
		h := reverseHost(hostOf("http://" + strings.TrimPrefix(strings.TrimPrefix(q.Domain, "http://"), "https://")))
		if h == "" {
			return nil, fmt.Errorf("lineage: domain %q is not a host name", q.Domain)
		}
		prefixes = [][]byte{key(pHost, h, ""), []byte(pHost + "\x00" + h + ".")}
	default:
		return nil, errors.New("lineage: query by id, URL or domain")
	}
	seen := map[string]bool{}
	var ids []string
	var err error
	for _, p := range prefixes {
		err = ix.db.scan(p, func(k, _ []byte) bool {
			id := string(k[bytes.LastIndexByte(k, 0)+1:])
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
			return limit <= 0 || len(ids) < limit
		})
		if err != nil || (limit > 0 && len(ids) >= limit) {
			break
		}
	}
	sort.Strings(ids)
	return ids, err
}

// lineage reads one document's events, nil when the index has none.
func (ix *Index) lineage(id string) (*Lineage, error) {
	l := &Lineage{ID: id}
	var derr error
	err := ix.db.scan(key(pDoc, id, ""), func(_, v []byte) bool {
		var e Event
		if derr = json.Unmarshal(v, &e); derr != nil {
			return false
		}
		l.Events = append(l.Events, e)
		return true
	})
	if err == nil {
		err = derr
	}
	if err == nil {
		p := key(pCluster, id, "")
		err = ix.db.scan(p, func(k, _ []byte) bool {
			l.Cluster = append(l.Cluster, string(k[len(p):]))
			return true
		})
	}
	if err != nil || len(l.Events) == 0 {
		return nil, err
	}
	l.Status = status(l.Events)
	for _, e := range l.Events {
		if e.Kind == pipelines.KindDedup && !e.Kept && e.DupOf != "" && ix.takenDown(e.DupOf) {
			// A later run's copy of a taken-down document, dropped by
			// dedup against the store the takedown added it to.
			l.Status += ": " + e.DupOf + " was taken down (" + TakedownListFile + " of the dedup store)"
		}
	}
	for _, e := range l.Events {
		if e.URL != "" {
			l.URL = e.URL
		}
	}
	for _, s := range ix.run.Plan.Steps {
		if s.Kind == pipelines.KindIngest {
			for _, e := range l.Events {
				if e.Step == s.Name {
					l.Source = s.Source
				}
			}
		}
	}
	return l, nil
}

// status sums a path up: the last word of the last decision.
func status(es []Event) string {
	st := "ingested"
	for _, e := range es {
		switch {
		case e.Kind == "takedown":
			return "taken down " + e.Time
		case !e.Kept && e.Kind != pipelines.KindExport:
			st = "dropped by " + e.Step + ": " + e.Reason
			if e.DupOf != "" {
				st += " (duplicate of " + e.DupOf + ")"
			}
		case e.Kind == pipelines.KindTokenize:
			st = "kept (tokenized)"
		case e.Kind != pipelines.KindExport && !strings.HasPrefix(st, "dropped"):
			st = "kept by " + e.Step
		}
	}
	return st
}

var (
	reasonsMu    sync.Mutex
	reasonsCache = map[string]map[string]bool{}
)

// ruleReasons are the drop reasons a filter rule declares ("classifier":
// the keep policies').
func ruleReasons(rule string) map[string]bool {
	reasonsMu.Lock()
	defer reasonsMu.Unlock()
	if m, ok := reasonsCache[rule]; ok {
		return m
	}
	m := map[string]bool{}
	if rule == "classifier" {
		m[filter.QualityPareto], m[filter.QualityThreshold] = true, true
	} else {
		c := filter.DefaultConfig()
		c.Rules = []string{rule}
		if rule != filter.RuleDecontam { // needs its index to build
			if p, err := c.Pipeline(); err == nil {
				for _, r := range p.Reasons() {
					m[r] = true
				}
			}
		}
	}
	reasonsCache[rule] = m
	return m
}
