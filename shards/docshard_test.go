package shards

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testDocs(n int) []*Document {
	docs := make([]*Document, n)
	for i := range docs {
		d := &Document{
			ID:        fmt.Sprintf("src/%04d", i),
			Source:    "src",
			URL:       fmt.Sprintf("https://example.org/%d", i),
			Date:      "2024-01-02T03:04:05Z",
			Lang:      "en",
			LangScore: 0.5 + float64(i%50)/100,
			Text:      strings.Repeat(fmt.Sprintf("document %d says hello, ünïcode ✓. ", i), 1+i%40),
			Meta:      fmt.Sprintf(`{"n":%d}`, i),
		}
		if i%3 == 0 {
			d.Quality, d.HasQuality = float64(i%10)/10, true
		}
		docs[i] = d
	}
	return docs
}

func writeDocs(t *testing.T, dir string, docs []*Document, opt DocWriterOptions) []ShardInfo {
	t.Helper()
	w := NewDocWriter(dir, opt)
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Kind: KindDocuments, Stage: "test", Shards: w.Shards(), Totals: SumShards(w.Shards())}
	if opt.Dropped {
		m.Kind = KindDropped
	}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return w.Shards()
}

func readAll(t *testing.T, dirs ...string) []*Document {
	t.Helper()
	r, err := OpenDocDirs(dirs...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []*Document
	for {
		d, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
}

func TestDocShardRoundTripAndCuts(t *testing.T) {
	dir := t.TempDir()
	docs := testDocs(500)
	var total int64
	for _, d := range docs {
		total += DocBytes(d)
	}
	target := total / 7
	shards := writeDocs(t, dir, docs, DocWriterOptions{TargetBytes: target, BatchRows: 37})
	if len(shards) < 7 || len(shards) > 8 {
		t.Fatalf("got %d shards for 7 targets' worth of data", len(shards))
	}
	for i, s := range shards[:len(shards)-1] {
		if s.DataBytes < target {
			t.Errorf("shard %d cut early: %d < %d", i, s.DataBytes, target)
		}
		if s.Name != ShardName("part", i) {
			t.Errorf("shard %d named %s", i, s.Name)
		}
	}
	got := readAll(t, dir)
	if len(got) != len(docs) {
		t.Fatalf("read %d docs, wrote %d", len(got), len(docs))
	}
	for i := range docs {
		if *got[i] != *docs[i] {
			t.Fatalf("doc %d differs:\n got %+v\nwant %+v", i, got[i], docs[i])
		}
	}
}

func TestDocShardDeterministic(t *testing.T) {
	docs := testDocs(300)
	a, b := t.TempDir(), t.TempDir()
	writeDocs(t, a, docs, DocWriterOptions{TargetBytes: 50_000})
	writeDocs(t, b, docs, DocWriterOptions{TargetBytes: 50_000})
	names, _ := filepath.Glob(filepath.Join(a, "*"))
	if len(names) < 3 {
		t.Fatalf("expected several files, got %v", names)
	}
	for _, n := range names {
		x, _ := os.ReadFile(n)
		y, err := os.ReadFile(filepath.Join(b, filepath.Base(n)))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two identical runs", filepath.Base(n))
		}
	}
}

func TestDroppedColumns(t *testing.T) {
	dir := t.TempDir()
	docs := testDocs(10)
	for i, d := range docs {
		d.Drop = &Drop{Reason: "gopher/too_few_words", Value: fmt.Sprint(i)}
		if i%2 == 0 {
			d.Drop = &Drop{Reason: "dedup:minhash", Value: "0.9", DupOf: "src/0001"}
		}
	}
	writeDocs(t, dir, docs, DocWriterOptions{Dropped: true})
	got := readAll(t, dir)
	for i := range docs {
		if *got[i].Drop != *docs[i].Drop {
			t.Fatalf("drop %d: got %+v want %+v", i, got[i].Drop, docs[i].Drop)
		}
	}
}

func TestSkip(t *testing.T) {
	dir := t.TempDir()
	docs := testDocs(200)
	writeDocs(t, dir, docs, DocWriterOptions{TargetBytes: 20_000, BatchRows: 16})
	for _, n := range []int64{0, 1, 15, 16, 17, 100, 199} {
		r, err := OpenDocDirs(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Skip(n); err != nil {
			t.Fatal(err)
		}
		d, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if d.ID != docs[n].ID {
			t.Errorf("after Skip(%d) got %s, want %s", n, d.ID, docs[n].ID)
		}
		r.Close()
	}
}

func TestCorruptShardNamed(t *testing.T) {
	dir := t.TempDir()
	shards := writeDocs(t, dir, testDocs(50), DocWriterOptions{})
	path := filepath.Join(dir, shards[0].Name)
	data, _ := os.ReadFile(path)
	// Truncate.
	if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenDocDirs(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Next()
	if err == nil || !strings.Contains(err.Error(), shards[0].Name) {
		t.Fatalf("truncated shard: got %v, want an error naming the file", err)
	}
	// Same size, one flipped byte.
	data[len(data)/2] ^= 0xff
	os.WriteFile(path, data, 0o644)
	r, _ = OpenDocDirs(dir)
	if _, err = r.Next(); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupted shard: got %v, want a checksum error", err)
	}
}

func TestManifestRejectsEscapes(t *testing.T) {
	for _, name := range []string{"../x.arrow", "/etc/passwd", "a/b.arrow", ".."} {
		dir := t.TempDir()
		m := &Manifest{Kind: KindDocuments, Shards: []ShardInfo{{Name: name}}}
		if err := WriteManifest(dir, m); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("%q: got %v, want an error", name, err)
		}
	}
}

func TestAtomicFileLeavesNothingOnAbort(t *testing.T) {
	dir := t.TempDir()
	a, err := CreateAtomic(filepath.Join(dir, "x"))
	if err != nil {
		t.Fatal(err)
	}
	a.Write([]byte("partial"))
	a.Abort()
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("abort left %v", ents)
	}
}
