package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestIngestDedupStats drives the verbs a user runs first, ingest then
// dedup, and checks that `smelt stats` shows what they did: counts that add
// up, and for the dedup directory its largest duplicate clusters, in text
// and in --json.
func TestIngestDedupStats(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 30; i++ {
		text := fmt.Sprintf("Document %d tells its own story about river number %d, with enough words to make a few shingles for minhash to work on properly.", i, i*7)
		lines = append(lines, fmt.Sprintf(`{"id":"d%d","text":%q}`, i, text))
		if i%10 == 0 { // an exact copy under another id
			lines = append(lines, fmt.Sprintf(`{"id":"copy%d","text":%q}`, i, text))
		}
	}
	lines = append(lines, `{"id":"broken"`)
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, dd := filepath.Join(dir, "docs"), filepath.Join(dir, "dedup")
	if _, err := runSmelt(t, "ingest", in, "--out", docs, "--source", "t"); err != nil {
		t.Fatalf("ingest with a broken line must exit 0: %v", err)
	}
	out, err := runSmelt(t, "stats", docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"in       34", "kept     33", "json/invalid", "in.jsonl"} {
		if !strings.Contains(out, want) {
			t.Errorf("smelt stats of the ingest output lacks %q:\n%s", want, out)
		}
	}
	if _, err := runSmelt(t, "dedup", docs, "--out", dd); err != nil {
		t.Fatal(err)
	}
	out, err = runSmelt(t, "stats", dd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "duplicate cluster") || !strings.Contains(out, "dedup:exact") {
		t.Errorf("smelt stats of a dedup directory shows no clusters:\n%s", out)
	}
	js, err := runSmelt(t, "stats", "--json", dd)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Manifest      shards.Manifest `json:"manifest"`
		Stats         shards.Stats    `json:"stats"`
		DedupClusters []struct {
			Clusters []struct {
				Size int `json:"size"`
			} `json:"largest_clusters"`
		} `json:"dedup_clusters"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, js)
	}
	if rep.Stats.In.Docs != 33 || rep.Stats.Dropped["dedup:exact"].Docs != 3 || rep.Manifest.Totals.Rows != 30 {
		t.Errorf("dedup stats: in %d, exact drops %d, rows %d; want 33, 3, 30", rep.Stats.In.Docs, rep.Stats.Dropped["dedup:exact"].Docs, rep.Manifest.Totals.Rows)
	}
	if len(rep.DedupClusters) != 1 || len(rep.DedupClusters[0].Clusters) != 3 || rep.DedupClusters[0].Clusters[0].Size != 2 {
		t.Errorf("--json clusters: %+v", rep.DedupClusters)
	}
}
