package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// Known documents of the fixture, looked for by the tests.
const (
	knownID     = "gen-known-0042"
	knownURL    = "https://example.com/articles/known-page"
	scriptID    = "gen-hostile-script"
	scriptText  = `Hello <script>document.title="pwned";window.__pwned=1</script><img src=x onerror="window.__pwned=2"> readers, this page tries to run code in the inspector.`
	shortID     = "gen-short-0001"
	dupSourceID = "gen-dup-original"
)

var goodWords = strings.Fields(`the a of and to in is that it was for on are as with his they at be this from have or by one had
not but what all were when we there can an your which their said if do will each about how up out them then she many some so these
would other into has more her two like him see time could no make than first been its who now people my made over did down only way
find use may water long little very after words called just where most know get through back much go good new write our me man too
any day same right look think also around another came come work three word must because does part even place well such here take why
things help put years different away again off went old number great tell men say small every found still between name should home
big give air line set own under read last never us left end along while might next sound below saw something thought both few those
always looked show large often together asked house don't world going want school important until form food keep children feet land
side without boy once animals life enough took sometimes four head above kind began almost live page got earth need far hand high year
mother light parts country father let night following picture being study second eyes soon times story boys since white days ever paper
hard near sentence better best across during today others however sure means knew it's try told young miles sun ways thing whole hear`)

func sentence(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = goodWords[r.IntN(len(goodWords))]
	}
	w[0] = strings.ToUpper(w[0][:1]) + w[0][1:]
	return strings.Join(w, " ") + "."
}

func paragraph(r *rand.Rand, sentences int) string {
	var b strings.Builder
	for i := 0; i < sentences; i++ {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(sentence(r, 8+r.IntN(10)))
	}
	return b.String()
}

// genDocs makes the fixture's generated documents: varied English-like
// prose, exact and near duplicates, short pages, spam and a page with a
// script tag.
func genDocs() []*shards.Document {
	r := rand.New(rand.NewPCG(8, 8))
	var docs []*shards.Document
	add := func(id, url, text string) *shards.Document {
		d := &shards.Document{ID: id, Source: "gen", URL: url, Date: "2024-05-01T00:00:00Z", Lang: "en", LangScore: 0.95, Text: text}
		docs = append(docs, d)
		return d
	}
	for i := 0; i < 240; i++ {
		var paras []string
		for p := 0; p < 3+r.IntN(4); p++ {
			paras = append(paras, paragraph(r, 4+r.IntN(4)))
		}
		id, url := fmt.Sprintf("gen-%04d", i), fmt.Sprintf("https://example.com/articles/%d", i)
		if i == 42 {
			id, url = knownID, knownURL
		}
		add(id, url, strings.Join(paras, "\n\n"))
	}
	orig := add(dupSourceID, "https://example.com/original", strings.Join([]string{paragraph(r, 6), paragraph(r, 6), paragraph(r, 6)}, "\n\n"))
	for i := 0; i < 5; i++ { // exact copies
		add(fmt.Sprintf("gen-dup-exact-%d", i), fmt.Sprintf("https://mirror%d.example.net/copy", i), orig.Text)
	}
	for i := 0; i < 3; i++ { // near copies: one sentence appended
		add(fmt.Sprintf("gen-dup-near-%d", i), fmt.Sprintf("https://blog%d.example.org/post", i), orig.Text+"\n\n"+sentence(r, 10))
	}
	for i := 0; i < 12; i++ {
		add(fmt.Sprintf("gen-short-%04d", i), fmt.Sprintf("https://example.com/short/%d", i), sentence(r, 5))
	}
	for i := 0; i < 10; i++ { // spam: one line repeated
		add(fmt.Sprintf("gen-spam-%04d", i), fmt.Sprintf("https://spam.example/%d", i), strings.Repeat("BUY CHEAP PILLS NOW click here best price\n", 40+i))
	}
	for i := 0; i < 6; i++ {
		d := add(fmt.Sprintf("gen-fr-%04d", i), fmt.Sprintf("https://exemple.fr/%d", i), "Ceci est une page en français. "+paragraph(r, 5))
		d.Lang, d.LangScore = "fr", 0.9
	}
	s := add(scriptID, "https://evil.example/<script>alert(1)</script>", scriptText+"\n\n"+paragraph(r, 6)+"\n\n"+paragraph(r, 6))
	s.Meta = `{"title":"<script>alert('meta')</script>"}`
	return docs
}

func writeDocDir(t testing.TB, dir string, docs []*shards.Document, target int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: target, BatchRows: 16})
	st := shards.NewStats("ingest")
	for _, d := range docs {
		st.In.Add(shards.DocBytes(d))
		st.Keep(d)
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteStats(dir, st); err != nil {
		t.Fatal(err)
	}
	if err := shards.WriteManifest(dir, &shards.Manifest{Kind: shards.KindDocuments, Stage: "ingest", Shards: w.Shards(),
		Totals: shards.SumShards(w.Shards()), Sources: shards.SourceTotals(st)}); err != nil {
		t.Fatal(err)
	}
}

// trafilaturaPages returns up to n of go-trafilatura's test pages from the
// module cache (nil when they are not there).
func trafilaturaPages(n int) []string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/markusmobius/go-trafilatura").Output()
	if err != nil {
		return nil
	}
	pages, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "test-files", "comparison", "*.html"))
	sort.Strings(pages)
	return pages[:min(n, len(pages))]
}

// fixture is a run directory built by the real stages: ingest (generated
// documents, plus go-trafilatura's test pages when the module cache has
// them), filter with a freshly trained quality classifier and the Pareto
// keep policy, dedup, tokenize with GPT-2's encoding, and a trainer log.
type fixture struct {
	Dir      string
	HasWeb   bool
	WebDocID string // one ingested web page's id
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "smelt-report-fixture-")
		if err != nil {
			fixErr = err
			return
		}
		fix, fixErr = buildFixture(t, dir)
	})
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix != nil {
		os.RemoveAll(fix.Dir)
	}
	if benchDir != "" {
		os.RemoveAll(filepath.Dir(benchDir))
	}
	os.Exit(code)
}

func buildFixture(t testing.TB, dir string) (*fixture, error) {
	ctx := context.Background()
	f := &fixture{Dir: dir}
	docs := genDocs()
	writeDocDir(t, filepath.Join(dir, "ingest-gen"), docs, 24<<10)
	steps := []string{"ingest-gen"}
	inputs := []string{filepath.Join(dir, "ingest-gen")}
	if pages := trafilaturaPages(40); len(pages) > 0 {
		if _, err := ingest.Run(ctx, pages, filepath.Join(dir, "ingest-web"), ingest.Options{Source: "web", Workers: 2}); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
		in, err := shards.OpenDocDirs(filepath.Join(dir, "ingest-web"))
		if err != nil {
			return nil, err
		}
		d, err := in.Next()
		in.Close()
		if err != nil {
			return nil, err
		}
		f.HasWeb, f.WebDocID = true, d.ID
		steps = append(steps, "ingest-web")
		inputs = append(inputs, filepath.Join(dir, "ingest-web"))
	}

	// A step with stats only, as smelt run's classifier step writes.
	cst := shards.NewStats("classifier")
	cst.Metric("classifier/held_out_roc_auc", "auc").Add(0.97)
	if err := os.MkdirAll(filepath.Join(dir, "classifier"), 0o755); err != nil {
		return nil, err
	}
	if err := shards.WriteStats(filepath.Join(dir, "classifier"), cst); err != nil {
		return nil, err
	}

	// Quality classifier: long generated prose against spam and short pages.
	var ex []filter.Example
	if f.HasWeb {
		in, err := shards.OpenDocDirs(filepath.Join(dir, "ingest-web"))
		if err != nil {
			return nil, err
		}
		for {
			d, err := in.Next()
			if err != nil {
				break
			}
			ex = append(ex, filter.Example{ID: d.ID, Text: d.Text, Positive: true})
		}
		in.Close()
	}
	for _, d := range docs {
		pos := !strings.HasPrefix(d.ID, "gen-spam") && !strings.HasPrefix(d.ID, "gen-short")
		ex = append(ex, filter.Example{ID: d.ID, Text: d.Text, Positive: pos})
	}
	tr, err := filter.Train(ctx, ex, filter.TrainOptions{Bits: 14, MaxIter: 60})
	if err != nil {
		return nil, fmt.Errorf("train classifier: %w", err)
	}
	cfg := filter.DefaultConfig()
	pipe, err := cfg.Pipeline()
	if err != nil {
		return nil, err
	}
	keep, err := filter.ParseKeep("pareto:2")
	if err != nil {
		return nil, err
	}
	stage := &filter.Stage{Pipeline: pipe, Model: tr.Model, Keep: keep}
	if _, err := stage.Run(ctx, filter.RunOptions{Inputs: inputs, Out: filepath.Join(dir, "filter"), Workers: 2, TargetBytes: 32 << 10, Settings: "report-fixture"}); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if _, _, err := dedup.Run(ctx, dedup.Config{Inputs: []string{filepath.Join(dir, "filter")}, Out: filepath.Join(dir, "dedup"), Workers: 2, TargetBytes: 32 << 10}); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	enc, err := tokenize.Get("gpt2")
	if err != nil {
		return nil, err
	}
	// One token directory per source (as `smelt run`'s tokenize tasks),
	// and the merged step directory.
	type task struct {
		Rank   int    `json:"rank"`
		Source string `json:"source"`
		Out    string `json:"out"`
	}
	var tasks []task
	for i, src := range []string{"gen", "web"} {
		if src == "web" && !f.HasWeb {
			continue
		}
		// The dedup output mixes sources; a per-source token directory
		// is the dedup output of that source only.
		srcDir := filepath.Join(dir, ".fixture", "dedup-"+src)
		var sdocs []*shards.Document
		in, err := shards.OpenDocDirs(filepath.Join(dir, "dedup"))
		if err != nil {
			return nil, err
		}
		for {
			d, err := in.Next()
			if err != nil {
				break
			}
			if d.Source == src {
				sdocs = append(sdocs, d)
			}
		}
		in.Close()
		writeDocDir(t, srcDir, sdocs, 0)
		out := filepath.Join("tokenize", "tasks", fmt.Sprintf("%05d", i))
		if _, err := shards.Tokenize(ctx, shards.TokenizeConfig{Inputs: []string{srcDir}, Out: filepath.Join(dir, out), Encoder: enc, Workers: 2}); err != nil {
			return nil, fmt.Errorf("tokenize %s: %w", src, err)
		}
		tasks = append(tasks, task{Rank: i, Source: src, Out: out})
	}
	if _, err := shards.Tokenize(ctx, shards.TokenizeConfig{Inputs: []string{filepath.Join(dir, "dedup")}, Out: filepath.Join(dir, "tokenize"), Encoder: enc, Workers: 2}); err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	// A trainer log in the trainer's format (trainer.ReadLog reads it).
	if err := os.MkdirAll(filepath.Join(dir, "train"), 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("step,loss,val_loss,lr,grad_norm,tokens_per_s,mfu,elapsed_s\n")
	for s := 1; s <= 200; s++ {
		loss := 3 + 7.8*math.Exp(-float64(s)/40)
		val := ""
		if s%25 == 0 {
			val = fmt.Sprintf("%.4f", loss+0.15)
		}
		fmt.Fprintf(&b, "%d,%.4f,%s,%.6f,%.3f,%.0f,%.4f,%.2f\n", s, loss, val, 3e-4, 1.2, 52000.0, 0.01, float64(s)*0.1)
	}
	if err := os.WriteFile(filepath.Join(dir, "train", TrainLogName), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	recipe := "name: fixture\nsources:\n  - name: gen\n    weight: 0.7\n"
	if f.HasWeb {
		recipe += "  - name: web\n    weight: 0.3\n"
	}
	recipe += "classifier:\n  keep: pareto:2\n"
	recipe += "train:\n  steps: 200\n  batch_size: 8\n  seq_len: 64\n"
	if err := os.WriteFile(filepath.Join(dir, "recipe.yaml"), []byte(recipe), 0o644); err != nil {
		return nil, err
	}
	type step struct {
		Name  string `json:"name"`
		Kind  string `json:"kind"`
		Tasks []task `json:"tasks"`
	}
	var plan struct {
		Steps []step `json:"steps"`
	}
	for _, s := range steps {
		plan.Steps = append(plan.Steps, step{Name: s, Kind: "ingest"})
	}
	plan.Steps = append(plan.Steps, step{Name: "classifier", Kind: "classifier"}, step{Name: "filter", Kind: "filter"}, step{Name: "dedup", Kind: "dedup"},
		step{Name: "tokenize", Kind: "tokenize", Tasks: tasks}, step{Name: "train", Kind: "train"})
	data, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, ".smelt"), 0o755); err != nil {
		return nil, err
	}
	return f, os.WriteFile(filepath.Join(dir, ".smelt", "plan.json"), data, 0o644)
}
