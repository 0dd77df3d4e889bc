package lineage

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// TestReplayMovesShardBoundaries: with small token shards, removing a
// document from the second shard moves every later boundary; replaying
// the recorded tokens gives the bytes that encoding the reduced documents
// gives, and the shards before the first changed one stay as they were.
func TestReplayMovesShardBoundaries(t *testing.T) {
	dir, run := freshRun(t)
	tok, err := tokenize.GetOrLoad(filepath.Join(run, "tokenizer", "lin-bpe300.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	docs := filepath.Join(dir, "docs")
	if err := copyTree(filepath.Join(run, "dedup", "tasks", "00000"), docs); err != nil {
		t.Fatal(err)
	}
	tokenizeTo := func(out string, enc shards.Encoder) *shards.Manifest {
		t.Helper()
		if _, err := shards.Tokenize(ctx, shards.TokenizeConfig{Inputs: []string{docs}, Out: out, Encoder: enc, Source: "crawl", Workers: 1, TargetBytes: 12 << 10}); err != nil {
			t.Fatal(err)
		}
		m, err := shards.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	old := filepath.Join(dir, "old")
	om := tokenizeTo(old, tok)
	if len(om.Shards) < 4 {
		t.Fatalf("only %d token shards", len(om.Shards))
	}
	ts, err := shards.ReadTokenShard(filepath.Join(old, om.Shards[1].Name), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ts3, err := shards.ReadTokenShard(filepath.Join(old, om.Shards[3].Name), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	remove := []string{ts.ID(1), ts3.ID(0)}
	dm, err := shards.ReadManifest(docs)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range dm.Shards {
		names = append(names, s.Name)
	}
	if err := rewriteDocDir(docs, &docPlan{Remove: remove, Shards: names}); err != nil {
		t.Fatal(err)
	}
	enc := &replayEncoder{info: *om.Tokenizer, dir: old, m: om, skip: setOf(remove)}
	replayed := filepath.Join(dir, "replayed")
	tokenizeTo(replayed, enc)
	if enc.err != nil || enc.next() {
		t.Fatalf("replay left rows or failed: %v", enc.err)
	}
	encoded := filepath.Join(dir, "encoded")
	tokenizeTo(encoded, tok)
	a, b := treeFiles(t, replayed, "."), treeFiles(t, encoded, ".")
	sameFiles(t, "replayed vs encoded", b, a)
	o := treeFiles(t, old, ".")
	if string(o[om.Shards[0].Name]) != string(a[om.Shards[0].Name]) {
		t.Fatal("the shard before the first removed document changed")
	}
	if string(o[om.Shards[2].Name]) == string(a[om.Shards[2].Name]) {
		t.Fatal("a shard after the removed document kept its bytes: boundaries did not move")
	}
}
