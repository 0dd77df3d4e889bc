package lineage

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/pipelines"
	"github.com/smelt-dev/smelt/shards"
)

// allDocs looks up every document of the run by domain.
func allDocs(t *testing.T, ix *Index) []*Lineage {
	t.Helper()
	ls, err := ix.Lookup(Query{Domain: "example"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) == 0 {
		t.Fatal("no documents under the domain example")
	}
	return ls
}

func eventOf(l *Lineage, step string) *Event {
	for i := range l.Events {
		if l.Events[i].Step == step {
			return &l.Events[i]
		}
	}
	return nil
}

// tokensAt reads a token shard row's tokens.
func tokensAt(t *testing.T, run string, e *Event) []uint32 {
	t.Helper()
	ts, err := shards.ReadTokenShard(filepath.Join(run, e.Dir, e.Shard), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ts.ID(int(e.Row)) == "" {
		t.Fatal("empty id")
	}
	return ts.AppendTokens(nil, int(e.Row), 0, ts.Len(int(e.Row)))
}

// TestLineagePaths: a kept, a filtered, a deduplicated and a taken-down
// document each show their path, and the export positions hold the
// document's tokens.
func TestLineagePaths(t *testing.T) {
	_, run := freshRun(t)
	ctx := context.Background()
	ix, err := Open(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	var kept, filtered, duped *Lineage
	for _, l := range allDocs(t, ix) {
		switch {
		case kept == nil && l.Status == "kept (tokenized)":
			kept = l
		case filtered == nil && strings.HasPrefix(l.Status, "dropped by filter-crawl"):
			filtered = l
		case duped == nil && strings.HasPrefix(l.Status, "dropped by dedup"):
			duped = l
		}
	}
	if kept == nil || filtered == nil || duped == nil {
		t.Fatalf("kept %v filtered %v duplicate %v", kept, filtered, duped)
	}

	// Kept: ingest input and record key, filter rules, dedup, tokens, exports.
	in := eventOf(kept, "ingest-crawl")
	if in == nil || !strings.HasSuffix(in.Input, ".jsonl") || "crawl/"+in.RecordKey != kept.ID || in.URL != kept.URL {
		t.Fatalf("kept: ingest event %+v", in)
	}
	if f := eventOf(kept, "filter-crawl"); f == nil || !f.Kept || len(f.Rules) != 1 || f.Rules[0].Decision != "pass" {
		t.Fatalf("kept: filter event %+v", f)
	}
	if d := eventOf(kept, "dedup"); d == nil || !d.Kept {
		t.Fatalf("kept: dedup event %+v", d)
	}
	tok := eventOf(kept, "tokenize")
	if tok == nil || tok.Tokens < 2 {
		t.Fatalf("kept: tokenize event %+v", tok)
	}
	want := tokensAt(t, run, tok)
	check := func(step string, header int64) {
		t.Helper()
		e := eventOf(kept, step)
		if e == nil || e.Length != 2*tok.Tokens || e.ByteOffset < header {
			t.Fatalf("kept: %s event %+v", step, e)
		}
		f, err := os.Open(filepath.Join(run, step, e.File))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, e.Length)
		if _, err := f.ReadAt(buf, e.ByteOffset); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if got := uint32(binary.LittleEndian.Uint16(buf[2*i:])); got != want[i] {
				t.Fatalf("%s: %s at %d: token %d is %d, the token shard has %d", step, e.File, e.ByteOffset, i, got, want[i])
			}
		}
	}
	check("export-megatron", 0)
	check("export-nanogpt", 0)
	check("export-llmc", 1024)
	for _, s := range []string{"export-jsonl", "export-parquet", "export-parquet-tokens"} {
		if e := eventOf(kept, s); e == nil || e.File == "" {
			t.Fatalf("kept: no %s event: %+v", s, kept.Events)
		}
	}

	// Filtered: the rule, reason and value; nothing after.
	f := eventOf(filtered, "filter-crawl")
	if f == nil || f.Kept || !strings.HasPrefix(f.Reason, "gopher/") || f.Value == "" || f.Rules[0].Decision != "drop" {
		t.Fatalf("filtered: %+v", f)
	}
	if eventOf(filtered, "dedup") != nil || eventOf(filtered, "tokenize") != nil {
		t.Fatalf("filtered document went on: %+v", filtered.Events)
	}

	// Deduplicated: the survivor, whose cluster lists it.
	d := eventOf(duped, "dedup")
	if d == nil || d.Kept || d.DupOf == "" || eventOf(duped, "tokenize") != nil {
		t.Fatalf("duplicate: %+v", duped.Events)
	}
	surv, err := ix.Lookup(Query{ID: d.DupOf}, 0)
	if err != nil || len(surv) != 1 {
		t.Fatalf("survivor %s: %v %v", d.DupOf, surv, err)
	}
	found := false
	for _, m := range surv[0].Cluster {
		found = found || m == duped.ID
	}
	if !found {
		t.Fatalf("survivor %s cluster %v lacks %s", d.DupOf, surv[0].Cluster, duped.ID)
	}
	ix.Close()

	// Taken down: removed everywhere, the path before still shown.
	if _, err := Takedown(ctx, run, Request{URLs: []string{kept.URL}}, TakedownOptions{}); err != nil {
		t.Fatal(err)
	}
	ix, err = Open(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	ls, err := ix.Lookup(Query{URL: kept.URL}, 0)
	if err != nil || len(ls) != 1 {
		t.Fatalf("taken down: %v %v", ls, err)
	}
	td := ls[0]
	if !strings.HasPrefix(td.Status, "taken down") || eventOf(td, "takedown") == nil || eventOf(td, "tokenize") == nil {
		t.Fatalf("taken down: %s %+v", td.Status, td.Events)
	}
	// No output holds it now.
	for _, dir := range []string{"dedup", "tokenize", "filter-crawl", "ingest-crawl"} {
		m, err := shards.ReadManifest(filepath.Join(run, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range m.Shards {
			if err := shards.VerifyShard(filepath.Join(run, dir, s.Name), s); err != nil {
				t.Fatal(err)
			}
		}
		if dir == "tokenize" {
			for _, s := range m.Shards {
				ts, err := shards.ReadTokenShard(filepath.Join(run, dir, s.Name), &s, 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < ts.Rows(); i++ {
					if ts.ID(i) == kept.ID {
						t.Fatalf("%s still in %s", kept.ID, s.Name)
					}
				}
			}
			continue
		}
		err = forEachDoc(filepath.Join(run, dir), m, func(_ string, _ int64, d *shards.Document) {
			if d.ID == kept.ID {
				t.Errorf("%s still in %s", kept.ID, dir)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		st, err := shards.ReadStats(filepath.Join(run, dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Balanced(); err != nil || st.Out.Docs != m.Totals.Rows || st.Dropped[DropTakedown].Docs != 1 {
			t.Fatalf("%s: stats %+v (%v), manifest rows %d", dir, st.Out, err, m.Totals.Rows)
		}
	}
	_ = pipelines.StateDir
}

// TestForEachDocKeepsNoBlock: an index build keeps every document's id
// (its per-id counters) but must not keep the decoded record batches the
// ids were read from, or its memory grows with the whole run (the fast
// reader's strings point into one block per batch).
func TestForEachDocKeepsNoBlock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docs")
	var docs []*shards.Document
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 1100) // ~50 KB
	for i := 0; i < 200; i++ {
		docs = append(docs, &shards.Document{ID: fmt.Sprintf("d%04d", i), Source: "web", URL: fmt.Sprintf("https://example.com/%d", i), Text: fmt.Sprintf("%d %s", i, text)})
	}
	if err := writeDocDir(dir, docs); err != nil {
		t.Fatal(err)
	}
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	kept := map[string]string{}
	if err := forEachDoc(dir, m, func(_ string, _ int64, d *shards.Document) { kept[d.ID] = d.URL }); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if len(kept) != len(docs) {
		t.Fatalf("read %d documents, wrote %d", len(kept), len(docs))
	}
	// 200 ids and URLs are a few KB; the text read was 10 MB.
	if grown := int64(ms.HeapAlloc) - int64(before); grown > 2<<20 {
		t.Fatalf("keeping 200 ids and URLs kept %d bytes of heap: the documents' decoded text is still referenced", grown)
	}
	runtime.KeepAlive(kept)
}
