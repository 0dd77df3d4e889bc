package report

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"golang.org/x/net/html"
)

func renderReport(t *testing.T, path string, opt Options) (*Run, *html.Node, string) {
	t.Helper()
	run, err := Load(path, opt)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Write(context.Background(), &b, run); err != nil {
		t.Fatal(err)
	}
	src := b.String()
	return run, parseHTML(t, strings.NewReader(src)), src
}

func TestLoadRunDirectory(t *testing.T) {
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range run.Steps {
		names = append(names, s.Name)
	}
	want := []string{"ingest-gen", "classifier", "filter", "dedup", "tokenize", "train"}
	if f.HasWeb {
		want = []string{"ingest-gen", "ingest-web", "classifier", "filter", "dedup", "tokenize", "train"}
	}
	if !run.IsRun || strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v (run dir %v), want %v in plan order", names, run.IsRun, want)
	}
	// Without the plan, the stage order still holds.
	noPlan := filepath.Join(t.TempDir(), "run")
	if err := os.MkdirAll(noPlan, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"train", "dedup", "filter", "ingest-gen"} {
		if err := os.Symlink(filepath.Join(f.Dir, n), filepath.Join(noPlan, n)); err != nil {
			t.Fatal(err)
		}
	}
	run, err = Load(noPlan, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names = names[:0]
	for _, s := range run.Steps {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "ingest-gen filter dedup train" {
		t.Errorf("without a plan: steps %s, want ingest-gen filter dedup train", got)
	}
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := Load(empty, Options{}); err == nil || !strings.Contains(err.Error(), "neither a stage directory") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Load(filepath.Join(empty, "missing"), Options{}); err == nil {
		t.Error("missing directory: no error")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, shards.ManifestName), []byte(`{"format_version": 1, "kind": `), 0o644)
	if _, err := Load(bad, Options{}); err == nil || !strings.Contains(err.Error(), filepath.Join(bad, shards.ManifestName)) {
		t.Errorf("broken manifest: %v, want an error naming the file", err)
	}
	os.WriteFile(filepath.Join(bad, shards.ManifestName), []byte(`{"format_version": 1, "kind": "documents", "shards": []}`), 0o644)
	os.WriteFile(filepath.Join(bad, shards.StatsName), []byte(`{"in": 3`), 0o644)
	if _, err := Load(bad, Options{}); err == nil || !strings.Contains(err.Error(), shards.StatsName) {
		t.Errorf("broken stats: %v, want an error naming the file", err)
	}
	if _, err := Load(empty, Options{MixFile: filepath.Join(empty, "nope.yaml")}); err == nil {
		t.Error("missing --mix file: no error")
	}
}

func dataInt(t *testing.T, n *html.Node, key string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(attr(n, key), 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", key, attr(n, key), err)
	}
	return v
}

func TestReportRunDirectory(t *testing.T) {
	f := getFixture(t)
	run, doc, src := renderReport(t, f.Dir, Options{})
	if n := findAll(doc, func(n *html.Node) bool {
		return n.Data == "script" || n.Data == "link" && attr(n, "rel") == "stylesheet" || n.Data == "img"
	}); len(n) > 0 {
		t.Errorf("the report has %d script, stylesheet or image elements: it must be self-contained", len(n))
	}
	if strings.Contains(src, " src=") || strings.Contains(src, "@import") || strings.Contains(src, "url(") {
		t.Error("the report refers to an external resource")
	}
	// Funnel: the kept counts and stored rows agree with the shards.
	rows := findAll(doc, byClass("step"))
	if len(rows) != len(run.Steps) {
		t.Fatalf("funnel has %d rows, want %d", len(rows), len(run.Steps))
	}
	for _, tr := range rows {
		st := stepNamed(t, run, attr(tr, "data-step"))
		if st.Manifest == nil && st.Stats != nil && !strings.Contains(text(tr), "keeps no documents") {
			t.Errorf("funnel %s: a step without shards shows kept documents: %q", st.Name, text(tr))
		}
		if st.Kind() != shards.KindDocuments {
			continue
		}
		n := int64(len(testutil.ReadDocs(t, st.Dir)))
		if dataInt(t, tr, "data-rows") != n || dataInt(t, tr, "data-kept") != n {
			t.Errorf("funnel %s: %s rows, %s kept; the shards hold %d", st.Name, attr(tr, "data-rows"), attr(tr, "data-kept"), n)
		}
		if st.Dropped != nil {
			d := int64(len(testutil.ReadDocs(t, filepath.Join(st.Dir, shards.DroppedDir))))
			if dataInt(t, tr, "data-in") != n+d {
				t.Errorf("funnel %s: %s in, the kept and dropped shards hold %d", st.Name, attr(tr, "data-in"), n+d)
			}
		}
	}
	// Drops: every reason with documents has an example that the dropped
	// side output holds with that reason.
	drops := findAll(doc, byClass("drop"))
	if len(drops) == 0 {
		t.Fatal("no drop rows")
	}
	for _, tr := range drops {
		st := stepNamed(t, run, attr(tr, "data-step"))
		reason, id := attr(tr, "data-reason"), attr(tr, "data-example")
		if id == "" {
			t.Errorf("%s %s: no example", st.Name, reason)
			continue
		}
		found := false
		for _, d := range testutil.ReadDocs(t, filepath.Join(st.Dir, shards.DroppedDir)) {
			if d.ID == id && d.Drop != nil && d.Drop.Reason == reason {
				found = true
			}
		}
		if !found {
			t.Errorf("%s %s: example %s is not a document dropped for that reason", st.Name, reason, id)
		}
	}
	// Charts: SVG with one mark per series and bin.
	charts := map[string]int{
		"funnel":         2 * 4,    // steps with shards and stats.json, two bars each (not the classifier's)
		"quality-filter": 2*20 + 2, // kept and dropped per bin, the share-kept line, the policy's line
		"clusters-dedup": 32,
		"loss-train":     2 + 8, // two polylines, 8 validation points
	}
	if f.HasWeb {
		charts["funnel"] = 2 * 5
	}
	for id, want := range charts {
		svg := one(t, doc, byID("chart-"+id), "chart "+id)
		if svg.Data != "svg" {
			t.Errorf("%s is a %s", id, svg.Data)
		}
		marks := findAll(svg, func(n *html.Node) bool { return n.Data == "rect" || n.Data == "polyline" || n.Data == "circle" })
		if len(marks) != want {
			t.Errorf("chart %s: %d marks, want %d", id, len(marks), want)
		}
	}
	// Stage metrics: the classifier's, filter's and dedup's, as stored.
	metrics := text(one(t, doc, byID("metrics-table"), "metrics table"))
	for _, m := range []string{"classifier/held_out_roc_auc", "filter/quality", "dedup/cluster_size"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics table lacks %s", m)
		}
	}
	// Dedup: the largest clusters with their members side by side.
	dd := stepNamed(t, run, "dedup")
	if got, want := len(findAll(doc, byClass("cluster"))), len(dd.Clusters.Clusters); got != want || want == 0 {
		t.Errorf("%d clusters shown, dedup_clusters.json lists %d", got, want)
	}
	members := 0
	for _, c := range dd.Clusters.Clusters {
		members += len(c.Members)
	}
	if got := len(findAll(doc, byClass("member"))); got != members {
		t.Errorf("%d cluster members shown, want %d", got, members)
	}
	// Mixture: the recipe's budget over the per-source token directories.
	plan := findAll(doc, byClass("plan"))
	if len(plan) == 0 {
		t.Fatal("no epochs table")
	}
	var drawn int64
	for _, tr := range plan {
		src := attr(tr, "data-source")
		m, err := shards.ReadManifest(filepath.Join(f.Dir, "tokenize", "tasks", map[string]string{"gen": "00000", "web": "00001"}[src]))
		if err != nil {
			t.Fatal(err)
		}
		if dataInt(t, tr, "data-available") != m.Totals.Tokens {
			t.Errorf("%s: %s tokens available, its token shards hold %d", src, attr(tr, "data-available"), m.Totals.Tokens)
		}
		drawn += dataInt(t, tr, "data-drawn")
	}
	if budget := int64(200 * 8 * (64 + 1)); math.Abs(float64(drawn-budget)) > float64(len(plan)) {
		t.Errorf("sources draw %d tokens, the recipe's budget is %d", drawn, budget)
	}
}

func TestReportStageDirectory(t *testing.T) {
	f := getFixture(t)
	run, doc, _ := renderReport(t, filepath.Join(f.Dir, "filter"), Options{})
	if run.IsRun || len(run.Steps) != 1 || run.Steps[0].Name != "filter" {
		t.Fatalf("stage directory loaded as %d steps (run %v)", len(run.Steps), run.IsRun)
	}
	one(t, doc, byID("chart-quality-filter"), "quality chart")
	if len(findAll(doc, byClass("drop"))) == 0 {
		t.Error("no drops")
	}
	// A token-shard directory on its own, with a mix budget.
	_, doc, _ = renderReport(t, filepath.Join(f.Dir, "tokenize"), Options{})
	one(t, doc, byID("chart-tokens"), "tokens chart")
	// The trainer's directory on its own.
	_, doc, _ = renderReport(t, filepath.Join(f.Dir, "train"), Options{})
	one(t, doc, byID("chart-loss-train"), "loss chart")
}

// TestReportHostileExample runs a stage with shards.RunDocStage that drops
// documents holding markup, and checks that the report's example shows the
// markup as text.
func TestReportHostileExample(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	writeDocDir(t, in, genDocs(), 0)
	_, err := shards.RunDocStage(context.Background(), shards.DocStageConfig{
		Stage: "markup", Inputs: []string{in}, Out: out, Workers: 2,
		Process: func(d *shards.Document) (*shards.Document, error) {
			if i := strings.Index(d.Text, "<script"); i >= 0 {
				d.Drop = &shards.Drop{Reason: "markup/script", Value: strconv.Itoa(i)}
			}
			return d, nil
		},
		Declare: []string{"markup/script", "markup/never"},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, doc, _ := renderReport(t, out, Options{})
	if n := findAll(doc, func(n *html.Node) bool { return n.Data == "script" || attr(n, "onerror") != "" }); len(n) > 0 {
		t.Fatalf("the example's markup became %d elements of the report", len(n))
	}
	tr := one(t, doc, byClass("drop"), "drop row")
	if attr(tr, "data-example") != scriptID || !strings.Contains(text(tr), `<script>document.title="pwned"`) {
		t.Errorf("example %q shows %.200q, want the <script> document's text", attr(tr, "data-example"), text(tr))
	}
	if !strings.Contains(text(doc), "markup/never") {
		t.Error("declared reason without documents is not listed")
	}
}

func TestReportDeterministic(t *testing.T) {
	f := getFixture(t)
	render := func() string {
		run, err := Load(f.Dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Build(context.Background(), run)
		if err != nil {
			t.Fatal(err)
		}
		rep.Generated = "fixed"
		var b bytes.Buffer
		if err := rep.Render(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if a, b := render(), render(); a != b {
		t.Error("two renderings of the same run differ")
	}
}

func TestReportCancelled(t *testing.T) {
	f := getFixture(t)
	run, err := Load(f.Dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, io.Discard, run); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled report: %v", err)
	}
}

// TestKeepProbability checks the drawn keep probability against the
// filter's own decisions on many documents.
func TestKeepProbability(t *testing.T) {
	for _, policy := range []string{"pareto:9", "pareto:2", "threshold:0.5"} {
		keep, err := filter.ParseKeep(policy)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []float64{0.05, 0.3, 0.5, 0.7, 0.95} {
			const n = 40000
			kept := 0
			for i := 0; i < n; i++ {
				if reason, _ := keep.Decide("doc-"+strconv.Itoa(i), s); reason == "" {
					kept++
				}
			}
			got, want := float64(kept)/n, keepProbability(keep, s)
			if math.Abs(got-want) > 4*math.Sqrt(want*(1-want)/n)+1e-9 {
				t.Errorf("%s at score %.2f: the filter kept %.4f, the report draws %.4f", policy, s, got, want)
			}
		}
	}
}
