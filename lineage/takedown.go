package lineage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/smelt-dev/smelt/export"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

// testHook, when set (by tests), is called at points where a kill leaves
// the most half-done state: between the renames of a directory swap, and
// after a shard is replaced but before its manifest is.
var testHook func(point string)

// TakedownFile is the audit record of a run's takedowns, in the run
// directory: every takedown ever applied, oldest first.
const TakedownFile = "takedown.json"

// TakedownListFile is the list of taken-down documents (one JSON object a
// line: id, url, sha256 of the text) that a takedown appends to, in the
// dedup store's directory when the recipe has one, else in the run
// directory. The opt-out rule reads its URLs (filter optout lists).
const TakedownListFile = "takedown-list.jsonl"

// DropTakedown is the reason stats count a taken-down document under.
const DropTakedown = "takedown"

// journalName is the unfinished takedown's journal, in the state directory.
const journalName = "takedown-journal.json"

// Request is what to take down.
type Request struct {
	IDs     []string `json:"ids,omitempty"`
	URLs    []string `json:"urls,omitempty"`
	Domains []string `json:"domains,omitempty"`
	// WithDuplicates also takes down the members of the matched
	// documents' dedup clusters.
	WithDuplicates bool `json:"with_duplicates,omitempty"`
}

// String sums a request up for messages.
func (r Request) String() string {
	var parts []string
	if len(r.IDs) > 0 {
		parts = append(parts, fmt.Sprintf("%d ids", len(r.IDs)))
	}
	if len(r.URLs) > 0 {
		parts = append(parts, fmt.Sprintf("%d urls", len(r.URLs)))
	}
	if len(r.Domains) > 0 {
		parts = append(parts, fmt.Sprintf("%d domains", len(r.Domains)))
	}
	if r.WithDuplicates {
		parts = append(parts, "with duplicates")
	}
	return strings.Join(parts, ", ")
}

// FileChange is one file a takedown changed: its sha256 and size before and
// after ("" and 0 after: removed).
type FileChange struct {
	Path      string `json:"path"`
	OldSHA256 string `json:"old_sha256"`
	NewSHA256 string `json:"new_sha256"`
	OldBytes  int64  `json:"old_bytes"`
	NewBytes  int64  `json:"new_bytes"`
}

// TakenDoc is one taken-down document and its path before the takedown.
type TakenDoc struct {
	ID     string  `json:"id"`
	URL    string  `json:"url,omitempty"`
	Events []Event `json:"events"`
}

// Record is one takedown in takedown.json.
type Record struct {
	Time    string   `json:"time"`
	Request Request  `json:"request"`
	Matched []string `json:"matched"`
	// Documents are the matched documents with their paths.
	Documents []TakenDoc `json:"documents"`
	// Files are every file the takedown changed, with old and new sha256.
	Files []FileChange `json:"files"`
	// List is the takedown list the documents were appended to.
	List string `json:"list,omitempty"`
	// Store are the dedup store segments that hold the documents' text
	// signatures, so that a later run with the store drops their copies.
	Store []StoreAdd `json:"store,omitempty"`
}

type takedownsFile struct {
	Takedowns []Record `json:"takedowns"`
}

// ReadTakedowns reads a run's takedown.json (none: nil).
func ReadTakedowns(runDir string) ([]Record, error) {
	data, err := os.ReadFile(filepath.Join(runDir, TakedownFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f takedownsFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(runDir, TakedownFile), err)
	}
	return f.Takedowns, nil
}

// docPlan is what a takedown does to one document directory.
type docPlan struct {
	// Remove are the ids to remove; Shards the shards that hold them.
	Remove []string `json:"remove"`
	Shards []string `json:"shards"`
	// Stats is the directory's new stats.json (kept documents only), and
	// Sources its manifest's new per-source totals.
	Stats   *shards.Stats            `json:"stats,omitempty"`
	Sources map[string]shards.Totals `json:"sources,omitempty"`
}

// journal is an unfinished takedown: the whole plan, decided before any
// file changes, and the phases done.
type journal struct {
	Record   Record              `json:"record"`
	Docs     map[string]*docPlan `json:"docs"`
	Tokenize []int               `json:"tokenize"`
	Exports  []string            `json:"exports"`
	Merges   []string            `json:"merges"`
	// Old holds every affected directory's files' sha256 and size before.
	Old  map[string]FileChange `json:"old"`
	Done map[string]bool       `json:"done"`
}

// TakedownOptions tune a takedown.
type TakedownOptions struct {
	// AfterPhase, if set, is called after each phase is recorded done
	// (tests kill the process there).
	AfterPhase func(phase string)
}

// Takedown removes the documents req matches from every output of the run
// in runDir and returns the audit record it appended to takedown.json. A
// takedown journal left by a killed takedown is finished first; it must be
// the same request.
func Takedown(ctx context.Context, runDir string, req Request, opt TakedownOptions) (*Record, error) {
	run, err := pipelines.OpenExisting(runDir, nil)
	if err != nil {
		return nil, err
	}
	unlock, err := shards.LockDir(filepath.Join(run.Dir, pipelines.StateDir), "lock")
	if err != nil {
		var le *shards.LockedError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("another smelt process is working in %s (%s): wait for it to end", run.Dir, le.Holder)
		}
		return nil, err
	}
	defer unlock()
	if !run.Done() {
		return nil, fmt.Errorf("%s: the run is not finished (smelt status shows what is left): finish it first, then take documents down", run.Dir)
	}
	jpath := filepath.Join(run.Dir, pipelines.StateDir, journalName)
	var j *journal
	if data, err := os.ReadFile(jpath); err == nil {
		j = &journal{}
		if err := json.Unmarshal(data, j); err != nil {
			return nil, fmt.Errorf("%s: %w", jpath, err)
		}
		a, _ := json.Marshal(j.Record.Request)
		b, _ := json.Marshal(req)
		if string(a) != string(b) {
			return nil, fmt.Errorf("%s holds an unfinished takedown (%s): run that request again to finish it first", jpath, j.Record.Request)
		}
		if err := loadProgress(jpath, j); err != nil {
			return nil, err
		}
		slog.Info("resuming takedown", "run", run.Dir, "done_phases", len(j.Done))
		// Phases run in parallel, so a kill can leave another phase's
		// half-written temporary file behind; the takedown holds the run's
		// lock, so no other writer owns one.
		if err := removeTempsUnder(run.Dir); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else {
		start := time.Now()
		if j, err = plan(ctx, run, req); err != nil {
			return nil, err
		}
		slog.Debug("takedown planned", "documents", len(j.Record.Matched), "seconds", time.Since(start).Seconds())
		// A progress file outlives its journal when a kill came between
		// their removals: it is not this takedown's.
		if err := os.Remove(progressPath(jpath)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if len(j.Record.Matched) == 0 {
			return &j.Record, nil
		}
		if err := saveJournal(jpath, j); err != nil {
			return nil, err
		}
	}
	if err := execute(ctx, run, j, jpath, opt); err != nil {
		return nil, err
	}
	return &j.Record, nil
}

func saveJournal(path string, j *journal) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(path, data)
}

// progress is what the phases add to a journal: the phases done and what
// the record learns while they run. It is saved apart from the journal
// after each phase: the journal holds every matched document's path
// (megabytes for 10,000 documents), which writing again after each of
// some thirty phases cost more than several phases.
type progress struct {
	Done  map[string]bool `json:"done"`
	List  string          `json:"list,omitempty"`
	Store []StoreAdd      `json:"store,omitempty"`
}

func progressPath(jpath string) string { return strings.TrimSuffix(jpath, ".json") + "-progress.json" }

func saveProgress(jpath string, j *journal) error {
	data, err := json.Marshal(progress{Done: j.Done, List: j.Record.List, Store: j.Record.Store})
	if err != nil {
		return err
	}
	return shards.WriteFileAtomic(progressPath(jpath), data)
}

// loadProgress applies a saved progress to the journal (none: nothing).
func loadProgress(jpath string, j *journal) error {
	data, err := os.ReadFile(progressPath(jpath))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var p progress
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("%s: %w", progressPath(jpath), err)
	}
	if j.Done == nil {
		j.Done = map[string]bool{}
	}
	for k, v := range p.Done {
		j.Done[k] = v
	}
	if p.List != "" {
		j.Record.List = p.List
	}
	if p.Store != nil {
		j.Record.Store = p.Store
	}
	return nil
}

// plan finds the documents and decides every change, touching nothing.
func plan(ctx context.Context, run *pipelines.Run, req Request) (*journal, error) {
	ix, err := Open(ctx, run.Dir)
	if err != nil {
		return nil, err
	}
	defer ix.Close()
	matched := map[string]bool{}
	add := func(q Query) error {
		ids, err := ix.ids(q, 0)
		for _, id := range ids {
			matched[id] = true
		}
		return err
	}
	for _, id := range req.IDs {
		matched[id] = true
	}
	for _, u := range req.URLs {
		if err := add(Query{URL: u}); err != nil {
			return nil, err
		}
	}
	for _, d := range req.Domains {
		if err := add(Query{Domain: d}); err != nil {
			return nil, err
		}
	}
	j := &journal{Record: Record{Time: time.Now().UTC().Format(time.RFC3339), Request: req},
		Docs: map[string]*docPlan{}, Old: map[string]FileChange{}, Done: map[string]bool{}}
	var lins []*Lineage
	seen := map[string]bool{}
	ids := sortedKeys(matched)
	for i := 0; i < len(ids); i++ {
		id := ids[i]
		if seen[id] {
			continue
		}
		seen[id] = true
		l, err := ix.lineage(id)
		if err != nil {
			return nil, err
		}
		if l == nil || strings.HasPrefix(l.Status, "taken down") {
			continue // unknown, or already taken down
		}
		lins = append(lins, l)
		if req.WithDuplicates {
			more := append([]string(nil), l.Cluster...)
			for _, e := range l.Events {
				if e.DupOf != "" {
					more = append(more, e.DupOf)
					if s, err := ix.lineage(e.DupOf); err == nil && s != nil {
						more = append(more, s.Cluster...)
					}
				}
			}
			for _, m := range more {
				if !seen[m] {
					ids = append(ids, m)
				}
			}
		}
	}
	sort.Slice(lins, func(a, b int) bool { return lins[a].ID < lins[b].ID })
	tokRanks := map[int]bool{}
	exports := map[string]bool{}
	merges := map[string]bool{}
	stepOf := map[string]*pipelines.Step{}
	for _, s := range run.Plan.Steps {
		for _, t := range s.Tasks {
			stepOf[t.Out] = s
		}
	}
	removed := map[string][]Event{} // document directory -> the removed documents' events
	for _, l := range lins {
		j.Record.Matched = append(j.Record.Matched, l.ID)
		j.Record.Documents = append(j.Record.Documents, TakenDoc{ID: l.ID, URL: l.URL, Events: l.Events})
		for _, e := range l.Events {
			switch e.Kind {
			case pipelines.KindIngest, pipelines.KindFilter, pipelines.KindDedup:
				p := j.Docs[e.Dir]
				if p == nil {
					p = &docPlan{}
					j.Docs[e.Dir] = p
				}
				p.Remove = append(p.Remove, l.ID)
				removed[e.Dir] = append(removed[e.Dir], e)
				if !contains(p.Shards, e.Shard) {
					p.Shards = append(p.Shards, e.Shard)
				}
				task := strings.TrimSuffix(e.Dir, "/"+shards.DroppedDir)
				if s := stepOf[task]; s != nil && s.Merge {
					merges[s.Name] = true
				}
			case pipelines.KindTokenize:
				s := stepOf[e.Dir]
				for _, t := range s.Tasks {
					if t.Out == e.Dir {
						tokRanks[t.Rank] = true
					}
				}
				merges[s.Name] = true
			case pipelines.KindExport:
				exports[e.Step] = true
			}
		}
	}
	for r := range tokRanks {
		j.Tokenize = append(j.Tokenize, r)
	}
	sort.Ints(j.Tokenize)
	j.Exports = sortedKeys(exports)
	// Merges in plan order (upstream first).
	for _, s := range run.Plan.Steps {
		if merges[s.Name] {
			j.Merges = append(j.Merges, s.Name)
		}
	}
	// The new stats and source totals of every document directory (each
	// reads its own shards: in parallel).
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(max(1, runtime.GOMAXPROCS(0)))
	for dir, p := range j.Docs {
		sort.Strings(p.Remove)
		sort.Strings(p.Shards)
		g.Go(func() error { return planStats(run, dir, p, removed[dir]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	// The files before.
	for _, d := range affectedDirs(run, j) {
		if err := hashDir(run.Dir, d, j.Old); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// affectedDirs are the directories (relative to the run) whose files a
// takedown may change.
func affectedDirs(run *pipelines.Run, j *journal) []string {
	set := map[string]bool{}
	for d := range j.Docs {
		set[d] = true
	}
	ts := run.Plan.Step("tokenize")
	for _, r := range j.Tokenize {
		set[ts.Tasks[r].Out] = true
	}
	for _, e := range j.Exports {
		set[e] = true
	}
	for _, m := range j.Merges {
		set[m] = true
		set[filepath.Join(m, shards.DroppedDir)] = true
	}
	return sortedKeys(set)
}

// hashDir records the sha256 and size of every regular file directly in
// run/dir. A file whose sha256 the directory's manifest.json (shards) or
// export.json (files) records, with the size it has now, takes that sum
// instead of being read: the writers record the sha256 of what they wrote,
// and reading every affected file before and after is I/O a takedown need
// not do. Files without a recorded sum (manifests, stats, llm.c's files,
// whose export.json records the sha256 of the tokens only) are read.
func hashDir(runDir, dir string, into map[string]FileChange) error {
	ents, err := os.ReadDir(filepath.Join(runDir, dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	known := recordedSums(filepath.Join(runDir, dir))
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		rel := filepath.Join(dir, e.Name())
		if k, ok := known[e.Name()]; ok {
			if fi, err := e.Info(); err == nil && fi.Size() == k.OldBytes {
				k.Path = rel
				into[rel] = k
				continue
			}
		}
		sum, n, err := shards.FileSHA256(filepath.Join(runDir, rel))
		if err != nil {
			return err
		}
		into[rel] = FileChange{Path: rel, OldSHA256: sum, OldBytes: n, NewSHA256: sum, NewBytes: n}
	}
	return nil
}

// planStats computes a directory's new stats (kept documents: they count
// as dropped by "takedown") and manifest source totals from the removed
// documents' index events, which carry each document's bytes, source and
// language; an event without them (an index that does not record them)
// makes it read the removed documents from the shards instead.
func planStats(run *pipelines.Run, rel string, p *docPlan, evs []Event) error {
	dir := filepath.Join(run.Dir, rel)
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return err
	}
	remove := setOf(p.Remove)
	sources := map[string]shards.Totals{}
	for k, v := range m.Sources {
		sources[k] = v
	}
	dropped := filepath.Base(rel) == shards.DroppedDir
	var st *shards.Stats
	if !dropped {
		if st, err = shards.ReadStats(dir); err != nil {
			return err
		}
	}
	sub := func(source, lang string, n int64) {
		if t, ok := sources[source]; ok {
			t.Rows--
			t.DataBytes -= n
			sources[source] = t
		}
		if st != nil {
			st.Out.Docs--
			st.Out.Bytes -= n
			st.Drop(DropTakedown, n)
			if c, ok := st.Sources[source]; ok {
				c.Docs--
				c.Bytes -= n
				st.Sources[source] = c
			}
			if st.Langs != nil {
				st.Langs[lang]--
			}
		}
	}
	known := len(evs) == len(p.Remove)
	for _, e := range evs {
		known = known && e.Bytes > 0
	}
	if known {
		for _, e := range evs {
			sub(e.Source, e.Lang, e.Bytes)
		}
	} else {
		var shs []shards.ShardInfo
		for _, s := range m.Shards {
			if contains(p.Shards, s.Name) {
				shs = append(shs, s)
			}
		}
		err = forEachDocLengths(dir, &shards.Manifest{Shards: shs}, func(_ string, _ int64, d *shards.Document) {
			if remove[d.ID] {
				sub(d.Source, d.Lang, shards.DocBytes(d))
			}
		})
		if err != nil {
			return err
		}
	}
	if m.Sources != nil {
		p.Sources = sources
	}
	p.Stats = st
	return nil
}

// execute runs the journal's phases not done yet, then records the
// takedown.
func execute(ctx context.Context, run *pipelines.Run, j *journal, jpath string, opt TakedownOptions) error {
	var mu sync.Mutex // guards j while phases run in parallel
	phase := func(name string, fn func() error) error {
		mu.Lock()
		done := j.Done[name]
		mu.Unlock()
		if done {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if err := fn(); err != nil {
			return fmt.Errorf("takedown %s: %w", name, err)
		}
		slog.Debug("takedown phase done", "phase", name, "seconds", time.Since(start).Seconds())
		mu.Lock()
		j.Done[name] = true
		err := saveProgress(jpath, j)
		mu.Unlock()
		if err != nil {
			return err
		}
		if opt.AfterPhase != nil {
			opt.AfterPhase(name)
		}
		return nil
	}
	// The phases form a graph: each waits for the phases that write what
	// it reads, and up to twice GOMAXPROCS run at once (the token replay is one
	// goroutine; the ingest and filter shards, which nothing downstream
	// reads, are rewritten while it and the exports run).
	var nodes []*dagNode
	writes := map[string]string{} // directory (relative to the run) -> the phase that rewrites it
	stepKind := map[string]string{}
	for _, st := range run.Plan.Steps {
		for _, t := range st.Tasks {
			stepKind[t.Out] = st.Kind
		}
	}
	nodes = append(nodes, &dagNode{name: "store", prio: 0, fn: func(ctx context.Context) error {
		added, err := addToStores(ctx, run, j)
		mu.Lock()
		j.Record.Store = added
		mu.Unlock()
		return err
	}})
	for _, dir := range sortedKeys(j.Docs) {
		name := "docs " + dir
		writes[dir] = name
		n := &dagNode{name: name, prio: 5, fn: func(context.Context) error {
			return rewriteDocDir(filepath.Join(run.Dir, dir), j.Docs[dir])
		}}
		if stepKind[strings.TrimSuffix(dir, "/"+shards.DroppedDir)] == pipelines.KindDedup {
			// The store reads the dedup step's shards before they change.
			n.prio, n.deps = 1, []string{"store"}
		}
		nodes = append(nodes, n)
	}
	ts := run.Plan.Step("tokenize")
	for _, r := range j.Tokenize {
		name := "tokenize " + strconv.Itoa(r)
		writes[ts.Tasks[r].Out] = name
		n := &dagNode{name: name, prio: 2, fn: func(ctx context.Context) error { return retokenize(ctx, run, r, setOf(j.Record.Matched)) }}
		for _, in := range ts.Tasks[r].Inputs {
			n.deps = append(n.deps, "docs "+in)
		}
		nodes = append(nodes, n)
	}
	for _, m := range j.Merges {
		n := &dagNode{name: "merge " + m, prio: 4, fn: func(context.Context) error { return run.Remerge(m) }}
		for d, ph := range writes {
			if strings.HasPrefix(d, m+"/") {
				n.deps = append(n.deps, ph)
			}
		}
		sort.Strings(n.deps)
		nodes = append(nodes, n)
	}
	for _, e := range j.Exports {
		n := &dagNode{name: "export " + e, prio: 3, fn: func(ctx context.Context) error { return reexport(ctx, run, e, setOf(j.Record.Matched)) }}
		p, err := readExport(run, e)
		if err != nil {
			// Swapped half-way by a killed attempt: wait for every
			// phase that writes shards.
			for _, ph := range writes {
				n.deps = append(n.deps, ph)
			}
		} else {
			for _, in := range p.Inputs {
				rel, err := filepath.Rel(run.Dir, resolveDir(run, in.Dir))
				if err == nil {
					n.deps = append(n.deps, "docs "+rel, "tokenize "+tokenRank(ts, rel))
				}
			}
		}
		sort.Strings(n.deps)
		nodes = append(nodes, n)
	}
	// Twice GOMAXPROCS phases at once: a shard directory's phase spends
	// most of its time waiting for fsync (at 200,000 documents on a busy
	// 2-core machine, 120 directories took 227 s of phase time for 4 s of
	// CPU), so with only GOMAXPROCS the cores sat idle behind them.
	if err := runDAG(ctx, nodes, max(2, 2*runtime.GOMAXPROCS(0)), func(ctx context.Context, n *dagNode) error {
		return phase(n.name, func() error { return n.fn(ctx) })
	}); err != nil {
		return err
	}
	if err := phase("list", func() error { return appendList(run, j) }); err != nil {
		return err
	}
	// The record removes the journal: it is the last phase, idempotent
	// on its own (it appends the record once).
	if opt.AfterPhase != nil {
		opt.AfterPhase("record")
	}
	start := time.Now()
	err := record(run, j, jpath)
	slog.Debug("takedown recorded", "seconds", time.Since(start).Seconds())
	return err
}

// tokenRank is the rank of the tokenize task whose output is rel ("" if
// none).
func tokenRank(ts *pipelines.Step, rel string) string {
	if ts != nil {
		for _, t := range ts.Tasks {
			if t.Out == rel {
				return strconv.Itoa(t.Rank)
			}
		}
	}
	return ""
}

// dagNode is one phase of a takedown with the phases it waits for.
type dagNode struct {
	name string
	// prio orders the ready phases (lowest first): the ones on the way
	// to the exports before the ones nothing waits for.
	prio int
	deps []string
	fn   func(ctx context.Context) error
}

// runDAG runs every node once its dependencies (names of other nodes; a
// name no node has is ignored) are done, at most workers at a time, the
// ready node of lowest prio first (then in the order given). The first
// error cancels the rest and is returned.
func runDAG(ctx context.Context, nodes []*dagNode, workers int, run func(context.Context, *dagNode) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	have := map[string]bool{}
	for _, n := range nodes {
		have[n.name] = true
	}
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	done := map[string]bool{}
	started := make([]bool, len(nodes))
	left := len(nodes)
	var first error
	ready := func(n *dagNode) bool {
		for _, d := range n.deps {
			if have[d] && !done[d] {
				return false
			}
		}
		return true
	}
	pick := func() int {
		best := -1
		for i, n := range nodes {
			if !started[i] && ready(n) && (best < 0 || n.prio < nodes[best].prio) {
				best = i
			}
		}
		return best
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			for first == nil && left > 0 {
				i := pick()
				if i < 0 {
					cond.Wait()
					continue
				}
				started[i] = true
				mu.Unlock()
				err := run(ctx, nodes[i])
				mu.Lock()
				if err != nil && first == nil {
					first = err
					cancel()
				}
				done[nodes[i].name] = true
				left--
				cond.Broadcast()
			}
		}()
	}
	wg.Wait()
	return first
}

// record appends the takedown to takedown.json (once: a resumed takedown
// whose record is already there leaves it) and removes the journal.
func record(run *pipelines.Run, j *journal, jpath string) error {
	now := map[string]FileChange{}
	for _, d := range affectedDirs(run, j) {
		if err := hashDir(run.Dir, d, now); err != nil {
			return err
		}
	}
	var files []FileChange
	for _, k := range sortedKeys(union(j.Old, now)) {
		o, had := j.Old[k]
		n, has := now[k]
		fc := FileChange{Path: k, OldSHA256: o.OldSHA256, OldBytes: o.OldBytes}
		if has {
			fc.NewSHA256, fc.NewBytes = n.OldSHA256, n.OldBytes
		}
		if had && has && fc.OldSHA256 == fc.NewSHA256 {
			continue
		}
		files = append(files, fc)
	}
	j.Record.Files = files
	recs, err := ReadTakedowns(run.Dir)
	if err != nil {
		return err
	}
	if n := len(recs); n == 0 || recs[n-1].Time != j.Record.Time || strings.Join(recs[n-1].Matched, "\n") != strings.Join(j.Record.Matched, "\n") {
		recs = append(recs, j.Record)
	}
	data, err := json.MarshalIndent(takedownsFile{Takedowns: recs}, "", "  ")
	if err != nil {
		return err
	}
	if err := shards.WriteFileAtomic(filepath.Join(run.Dir, TakedownFile), append(data, '\n')); err != nil {
		return err
	}
	if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Remove(progressPath(jpath)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// rewriteDocDir removes p.Remove from the shards p.Shards of a document
// directory (each shard rewritten aside and renamed over the old one),
// then writes its stats and manifest. Running it again gives the same
// files: a shard already without the documents is only measured.
func rewriteDocDir(dir string, p *docPlan) error {
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return err
	}
	remove := setOf(p.Remove)
	tmp := filepath.Join(dir, ".takedown")
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var out []shards.ShardInfo
	for _, si := range m.Shards {
		if !contains(p.Shards, si.Name) {
			out = append(out, si)
			continue
		}
		path := filepath.Join(dir, si.Name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			continue // emptied and removed by an earlier attempt
		}
		info, removedRows, err := filterDocShard(path, filepath.Join(tmp, si.Name), si, remove)
		if err != nil {
			return err
		}
		if removedRows == 0 {
			// Rewritten by an earlier attempt: the file is the new one.
			sum, n, err := shards.FileSHA256(path)
			if err != nil {
				return err
			}
			info.Name, info.SHA256, info.Bytes = si.Name, sum, n
			out = append(out, info)
			continue
		}
		rows := info.Rows
		if rows == 0 {
			if err := os.Remove(path); err != nil {
				return err
			}
			continue
		}
		if info.Name != si.Name {
			return fmt.Errorf("%s: internal error: rewrote %q as %q", dir, si.Name, info.Name)
		}
		if err := os.Rename(filepath.Join(tmp, info.Name), path); err != nil {
			return err
		}
		if testHook != nil {
			testHook("shard " + path)
		}
		out = append(out, info)
	}
	if p.Stats != nil {
		if err := shards.WriteStats(dir, p.Stats); err != nil {
			return err
		}
	}
	m.Shards = out
	m.Totals = shards.SumShards(out)
	if p.Sources != nil {
		m.Sources = p.Sources
	}
	return shards.WriteManifest(dir, m)
}

// replayEncoder is a tokenizer that encodes nothing: it hands out the
// tokens the run's token shards already hold for each document, in order,
// skipping the removed documents. The tokenize stage calls it once per
// non-empty document in input order (one worker), exactly the documents
// whose rows the old shards hold, so what it writes is what encoding the
// reduced input would write.
type replayEncoder struct {
	info   shards.TokenizerInfo
	dir    string
	m      *shards.Manifest
	skip   map[string]bool
	shard  int
	cur    *shards.TokenShard
	row    int
	err    error
	served int64
}

func (e *replayEncoder) Name() string        { return e.info.Name }
func (e *replayEncoder) VocabSize() int      { return e.info.VocabSize }
func (e *replayEncoder) EOT() (uint32, bool) { return e.info.EOT, true }
func (e *replayEncoder) RanksHash() string   { return e.info.RanksHash }

// next moves to the next row to serve, false at the end.
func (e *replayEncoder) next() bool {
	for e.err == nil {
		if e.cur != nil && e.row < e.cur.Rows() {
			if e.skip[e.cur.ID(e.row)] {
				e.row++
				continue
			}
			return true
		}
		if e.shard >= len(e.m.Shards) {
			return false
		}
		si := e.m.Shards[e.shard]
		e.shard++
		e.cur, e.err = shards.ReadTokenShard(filepath.Join(e.dir, si.Name), &si, e.info.VocabSize)
		e.row = 0
	}
	return false
}

func (e *replayEncoder) AppendEncodeOrdinary(dst []uint32, _ string) []uint32 {
	if !e.next() {
		if e.err == nil {
			e.err = fmt.Errorf("%s: more documents to tokenize than token rows", e.dir)
		}
		return dst
	}
	n := e.cur.Len(e.row)
	dst = e.cur.AppendTokens(dst, e.row, 0, n-1) // the stage appends the end-of-text id
	e.row++
	e.served++
	return dst
}

// retokenize rewrites a tokenize task's output from its own tokens, less
// the removed documents, into a directory beside it, then swaps the two.
func retokenize(ctx context.Context, run *pipelines.Run, rank int, remove map[string]bool) error {
	cfg, err := run.TokenizeConfig(rank)
	if err != nil {
		return err
	}
	out := cfg.Out
	old, staging := out+".takedown-old", out+".takedown-new"
	if err := recoverSwap(out, old, staging); err != nil {
		return err
	}
	m, err := shards.ReadManifest(out)
	if err != nil {
		return err
	}
	if m.Tokenizer == nil {
		return fmt.Errorf("%s: token manifest without a tokenizer", out)
	}
	enc := &replayEncoder{info: *m.Tokenizer, dir: out, m: m, skip: remove}
	cfg.Encoder, cfg.Out, cfg.Workers = enc, staging, 1
	// The replay hands out tokens, never reading the text: the shards'
	// text is not decompressed.
	cfg.TextUnused = true
	// The replayed shards keep the directory's compression (a manifest
	// without the field is from before it existed: zstd), so the shards
	// before the first changed one and the rewritten ones agree. A
	// finished run's recipe agrees with it anyway: the tokenize step's
	// fingerprint includes the compression, and Takedown refuses a run
	// whose steps are not done under its recipe.
	cfg.Compression = cmp.Or(m.Compression, shards.TokenCompressionZstd)
	if _, err := shards.Tokenize(ctx, cfg); err != nil {
		return err
	}
	if enc.err != nil {
		return enc.err
	}
	if enc.next() {
		return fmt.Errorf("%s: token row %s has no document left to match: the documents and token shards disagree", out, enc.cur.ID(enc.row))
	}
	if enc.err != nil {
		return enc.err
	}
	return swapDir(out, old, staging)
}

// recoverSwap finishes or undoes a swap of dir that a kill interrupted,
// and clears a staging directory left by a killed attempt.
func recoverSwap(dir, old, staging string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(filepath.Join(staging, shards.ManifestName)); err == nil {
			if err := os.Rename(staging, dir); err != nil {
				return err
			}
		} else if err := os.Rename(old, dir); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	return os.RemoveAll(staging)
}

// swapDir replaces dir by staging: dir -> old, staging -> dir, old removed.
// recoverSwap completes it after a kill at any point.
func swapDir(dir, old, staging string) error {
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if testHook != nil {
		testHook("swap " + dir)
	}
	if err := os.Rename(staging, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// reexport runs an export again, with the options and inputs its
// export.json records, into a directory beside it, then swaps the two.
// The new export reuses the old one's unchanged compressed blocks
// (export.Reuse): the same bytes as exporting from scratch, without
// compressing again what the removed documents did not touch.
//
// The new inputs are the export's old inputs less removed (the matched
// documents): the JSONL and Parquet documents files are derived from the
// old files (export.Reuse.Removed) without reading the shards' documents.
func reexport(ctx context.Context, run *pipelines.Run, step string, removed map[string]bool) error {
	out := filepath.Join(run.Dir, step)
	old, staging := out+".takedown-old", out+".takedown-new"
	if _, err := os.Stat(out); errors.Is(err, os.ErrNotExist) {
		// Swapped half-way: the staging export is complete only with
		// its export.json.
		if _, err := os.Stat(filepath.Join(staging, export.SidecarName)); err == nil {
			if err := os.Rename(staging, out); err != nil {
				return err
			}
		} else if err := os.Rename(old, out); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	// A killed attempt's staging export resumes from its checkpoint; one
	// killed before its first checkpoint (a file of it already published)
	// holds nothing recorded, and export.Run refuses a directory that is
	// not empty without one: it starts again. Exports run alongside other
	// phases, so a kill anywhere can land there.
	if !exists(filepath.Join(staging, exportCheckpoint)) && !exists(filepath.Join(staging, export.SidecarName)) {
		if err := os.RemoveAll(staging); err != nil {
			return err
		}
	}
	p, err := readExport(run, step)
	if err != nil {
		return err
	}
	var ins []*export.Input
	for _, in := range p.Inputs {
		i, err := export.OpenInput(in.Name, resolveDir(run, in.Dir), in.Weight)
		if err != nil {
			return err
		}
		ins = append(ins, i)
	}
	// A killed attempt's staging export resumes from its checkpoint.
	opt := p.Options
	opt.Reuse = &export.Reuse{Dir: out, Removed: removed}
	if _, err := export.Run(ctx, ins, staging, opt); err != nil {
		return err
	}
	return swapDir(out, old, staging)
}

// exportCheckpoint is the file an unfinished export records its progress in.
const exportCheckpoint = export.CheckpointName

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ListEntry is one line of the takedown list.
type ListEntry struct {
	ID   string `json:"id"`
	URL  string `json:"url,omitempty"`
	Time string `json:"time"`
}

// ListPath is where a run's takedowns are listed: in the dedup store of the
// recipe, else in the run directory.
func ListPath(run *pipelines.Run) string {
	if d := run.Recipe.Dedup; d != nil && d.Store != "" {
		return filepath.Join(d.Store, TakedownListFile)
	}
	return filepath.Join(run.Dir, TakedownListFile)
}

// appendList adds the taken-down documents to the takedown list, once.
func appendList(run *pipelines.Run, j *journal) error {
	path := ListPath(run)
	have, err := ReadList(path)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range have {
		seen[e.ID] = true
	}
	var buf []byte
	for _, d := range j.Record.Documents {
		if seen[d.ID] {
			continue
		}
		line, _ := json.Marshal(ListEntry{ID: d.ID, URL: d.URL, Time: j.Record.Time})
		buf = append(append(buf, line...), '\n')
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	j.Record.List = path
	return shards.WriteFileAtomic(path, append(old, buf...))
}

// ReadList reads a takedown list (none: nil).
func ReadList(path string) ([]ListEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ListEntry
	for i, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e ListEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", path, i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}

func setOf(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func union(a, b map[string]FileChange) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// recordedSums returns the sha256 and size the manifest.json and
// export.json of dir record for its files (none readable: empty).
func recordedSums(dir string) map[string]FileChange {
	out := map[string]FileChange{}
	add := func(name, sum string, n int64) {
		if sum != "" && !strings.ContainsRune(name, '/') {
			out[name] = FileChange{OldSHA256: sum, OldBytes: n, NewSHA256: sum, NewBytes: n}
		}
	}
	if m, err := shards.ReadManifest(dir); err == nil {
		for _, si := range m.Shards {
			add(si.Name, si.SHA256, si.Bytes)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, export.SidecarName)); err == nil {
		var p export.Provenance
		if json.Unmarshal(data, &p) == nil {
			for _, f := range p.Files {
				add(f.Name, f.SHA256, f.Bytes)
			}
		}
	}
	return out
}

// removeTempsUnder deletes the temporary files (".NAME.tmp-*", see
// shards.RemoveTemps) that interrupted writers left anywhere under dir.
func removeTempsUnder(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		return shards.RemoveTemps(path)
	})
}
