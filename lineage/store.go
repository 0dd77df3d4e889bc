package lineage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

// StoreAdd is one dedup store segment a takedown added: the removed
// documents' text signatures (exact hash, MinHash, URL, by the store's
// settings), so that a later run with the store drops their copies.
type StoreAdd struct {
	Store     string `json:"store"`
	Segment   uint64 `json:"segment"`
	Documents int64  `json:"documents"`
}

// storeDir is where a takedown writes the removed documents it adds to a
// store (one document directory per store), in the state directory.
const storeDir = "takedown-store"

// addToStores records the removed documents that reached the dedup step in
// the recipe's dedup store: their text as dedup saw it (the dedup step's
// output or its dropped/ side output), one segment per store (per source,
// or the global store). A document dropped before dedup (by ingest or the
// filter) never reached the store and is not added. It runs before the
// document shards are rewritten (they hold the text); run again after a
// kill it writes the same directories and AddToStore adds nothing twice.
//
// It returns the segments added (the record's Store): phases run in
// parallel, so the caller sets them under its lock.
func addToStores(ctx context.Context, run *pipelines.Run, j *journal) ([]StoreAdd, error) {
	d := run.Recipe.Dedup
	if d == nil || d.Store == "" {
		return nil, nil
	}
	// The dedup event of each removed document: which shard holds it.
	want := map[string]map[string]bool{} // dir/shard -> ids
	for _, td := range j.Record.Documents {
		for _, e := range td.Events {
			if e.Kind != pipelines.KindDedup {
				continue
			}
			k := filepath.Join(e.Dir, e.Shard)
			if want[k] == nil {
				want[k] = map[string]bool{}
			}
			want[k][td.ID] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	// The shards are read in parallel (a random 1% of a run's documents
	// sit in every shard of the dedup step).
	keys := sortedKeys(want)
	found := make([][]*shards.Document, len(keys))
	// Each shard's wanted documents are first copied out into a small
	// shard of their own (read/NNNNN.arrow) by shards.FilterDocShard, which
	// decompresses only the text frames that hold one: reading every
	// shard whole decoded all of the dedup step's text for 1% of it (at
	// 1,000,000 documents this phase took 3.2 CPU-s that way, 2.3 now).
	read := filepath.Join(run.Dir, pipelines.StateDir, storeDir+"-read")
	if err := os.RemoveAll(read); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(read, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(read)
	manifests := map[string]*shards.Manifest{}
	for _, k := range keys {
		dir := filepath.Dir(k)
		if _, ok := manifests[dir]; !ok {
			// The manifest entry lets the fast reader and the filter
			// bound what they decode; without it they still read.
			dm, err := shards.ReadManifest(filepath.Join(run.Dir, dir))
			if err != nil {
				dm = nil
			}
			manifests[dir] = dm
		}
	}
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(max(1, runtime.GOMAXPROCS(0)))
	for i, k := range keys {
		g.Go(func() error {
			dir, shard := filepath.Split(k)
			dir = filepath.Clean(dir)
			info := shards.ShardInfo{Name: shard}
			if dm := manifests[dir]; dm != nil {
				for _, si := range dm.Shards {
					if si.Name == shard {
						info = si
					}
				}
			}
			src := filepath.Join(run.Dir, dir, shard)
			keep := func(doc *shards.Document) {
				if want[k][doc.ID] {
					c := *doc
					c.Drop = nil
					c.Text = strings.Clone(doc.Text) // not the shard's whole decoded block
					found[i] = append(found[i], &c)
				}
			}
			tmp := filepath.Join(read, fmt.Sprintf("%05d.arrow", i))
			got, _, err := shards.FilterDocShard(src, tmp, info, func(id string) bool { return !want[k][id] })
			switch {
			case errors.Is(err, shards.ErrFilterFallback):
				// A layout the filter does not handle: read it whole.
			case err != nil:
				return err
			case got.Name != "":
				defer os.Remove(tmp)
				got.Name = filepath.Base(tmp)
				return forEachDoc(read, &shards.Manifest{Shards: []shards.ShardInfo{got}}, func(_ string, _ int64, doc *shards.Document) { keep(doc) })
			case got.Rows == 0:
				return nil // none of them is in the shard
			}
			// Every row is wanted (the filter wrote nothing), or the
			// fallback: the shard itself.
			return forEachDoc(filepath.Join(run.Dir, dir), &shards.Manifest{Shards: []shards.ShardInfo{info}}, func(_ string, _ int64, doc *shards.Document) { keep(doc) })
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	groups := map[string][]*shards.Document{} // store path -> documents
	for _, docs := range found {
		for _, doc := range docs {
			group := doc.Source
			if d.Global() {
				group = ""
			}
			groups[d.StorePath(group)] = append(groups[d.StorePath(group)], doc)
		}
	}
	base := filepath.Join(run.Dir, pipelines.StateDir, storeDir)
	if err := os.RemoveAll(base); err != nil {
		return nil, err
	}
	defer os.RemoveAll(base)
	var added []StoreAdd
	for i, store := range sortedKeys(groups) {
		docs := groups[store]
		sort.Slice(docs, func(a, b int) bool { return docs[a].ID < docs[b].ID })
		in := filepath.Join(base, fmt.Sprintf("%03d", i))
		if err := writeDocDir(in, docs); err != nil {
			return nil, err
		}
		seg, err := dedup.AddToStore(ctx, store, []string{in}, d.RunOptions(), filepath.Join(base, "work"))
		if err != nil {
			return nil, fmt.Errorf("adding the taken-down documents to the dedup store: %w", err)
		}
		added = append(added, StoreAdd{Store: store, Segment: seg.Gen, Documents: int64(len(docs))})
	}
	return added, nil
}

// writeDocDir writes docs as one finished document directory: one shard
// and its manifest. The same documents give the same bytes.
func writeDocDir(dir string, docs []*shards.Document) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{Prefix: "part", TargetBytes: 1 << 50, Manual: true})
	h := sha256.New()
	for _, doc := range docs {
		if err := w.Write(doc); err != nil {
			return err
		}
		h.Write([]byte(doc.ID))
		h.Write([]byte{0})
	}
	if err := w.Close(); err != nil {
		return err
	}
	out := w.Shards()
	m := &shards.Manifest{FormatVersion: 1, Kind: "documents", Stage: "takedown",
		Fingerprint: "takedown-" + hex.EncodeToString(h.Sum(nil)), Shards: out, Totals: shards.SumShards(out)}
	return shards.WriteManifest(dir, m)
}

// TakedownListWarning returns a line to show when a run starts whose
// recipe has a dedup store that holds a takedown list but whose sources'
// filters do not read it with the optout rule ("" otherwise). Such a run
// still keeps the taken-down text out, by deduplicating against the store
// (the takedown added it there), but not a taken-down URL whose text
// changed since.
func TakedownListWarning(r *pipelines.Recipe) string {
	if r == nil || r.Dedup == nil || r.Dedup.Store == "" {
		return ""
	}
	list := filepath.Join(r.Dedup.Store, TakedownListFile)
	entries, err := ReadList(list)
	if err != nil || len(entries) == 0 {
		return ""
	}
	var missing []string
	for _, s := range r.Sources {
		if !readsList(s, list) {
			missing = append(missing, s.Name)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("the dedup store lists %d taken-down documents in %s, and source(s) %s do not read it (filter rule optout, optout.takedowns): their copies are still dropped by dedup against the store (by text), but a taken-down URL whose text changed would come back; add the list to the sources' optout rule",
		len(entries), list, strings.Join(missing, ", "))
}

// readsList reports whether a mixed source's filter runs the optout rule
// with the takedown list at path (a reference source is never filtered).
func readsList(s *pipelines.Source, path string) bool {
	if s.Reference {
		return true
	}
	f := s.Filter
	if f == nil || f.OptOut == nil {
		return false
	}
	on := false
	for _, r := range f.Rules {
		on = on || r == filter.RuleOptOut
	}
	if !on {
		return false
	}
	for _, p := range f.OptOut.Takedowns {
		if filepath.Clean(p) == filepath.Clean(path) {
			return true
		}
	}
	return false
}
