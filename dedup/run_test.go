package dedup

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// synth is a generated corpus whose duplicates are known by construction.
type synth struct {
	docs []*shards.Document
	// want maps each document that must be dropped to its survivor and
	// reason.
	want map[string][2]string
}

func randomWords(r *rand.Rand, n int) []string {
	w := make([]string, n)
	for i := range w {
		w[i] = fmt.Sprintf("w%dx%d", r.Intn(20000), r.Intn(7))
	}
	return w
}

// genCorpus makes n base documents; every third gets an exact copy (case
// and white space changed) and a near copy (2 of ~200 words replaced), and
// every fifth a far copy (a third of the words replaced, not a duplicate).
// In odd clusters the near copy has the highest quality and survives.
func genCorpus(seed int64, n int, prefix, source string) synth {
	r := rand.New(rand.NewSource(seed))
	s := synth{want: map[string][2]string{}}
	add := func(id, text string, q float64) {
		s.docs = append(s.docs, &shards.Document{ID: id, Source: source, URL: "https://example.org/" + id,
			Text: text, Quality: q, HasQuality: true})
	}
	for i := 0; i < n; i++ {
		words := randomWords(r, 150+r.Intn(100))
		base := fmt.Sprintf("%s%05d", prefix, i)
		text := strings.Join(words, " ")
		if i%3 != 0 {
			add(base, text, 0.5)
			if i%5 == 0 {
				far := append([]string(nil), words...)
				for k := 0; k < len(far); k += 3 {
					far[k] = fmt.Sprintf("far%d", r.Intn(1e6))
				}
				add(base+"-far", strings.Join(far, " "), 0.5)
			}
			continue
		}
		near := append([]string(nil), words...)
		near[len(near)/3] = "changed"
		near[2*len(near)/3] = "edited"
		exact := strings.ToUpper(strings.Join(words, "  \n "))
		nearID, exactID := base+"-near", base+"-exact"
		if i%2 == 0 {
			add(base, text, 0.9)
			add(exactID, exact, 0.3)
			add(nearID, strings.Join(near, " "), 0.5)
			s.want[exactID] = [2]string{base, ReasonExact}
			s.want[nearID] = [2]string{base, ReasonMinHash}
		} else {
			add(base, text, 0.5)
			add(exactID, exact, 0.3)
			add(nearID, strings.Join(near, " "), 0.9)
			s.want[base] = [2]string{nearID, ReasonMinHash}
			s.want[exactID] = [2]string{nearID, ReasonMinHash}
		}
	}
	// Shuffle so that survivors do not depend on input order.
	r.Shuffle(len(s.docs), func(a, b int) { s.docs[a], s.docs[b] = s.docs[b], s.docs[a] })
	return s
}

func writeInput(t testing.TB, dir string, docs []*shards.Document, target int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: target})
	for _, d := range docs {
		if err := w.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := &shards.Manifest{Kind: shards.KindDocuments, Stage: "test", Shards: w.Shards(), Totals: shards.SumShards(w.Shards())}
	if err := shards.WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
}

func checkRouting(t *testing.T, out string, s synth) {
	t.Helper()
	kept := testutil.ReadDocs(t, out)
	dropped := testutil.ReadDocs(t, filepath.Join(out, shards.DroppedDir))
	if len(kept)+len(dropped) != len(s.docs) {
		t.Fatalf("%d kept + %d dropped != %d in", len(kept), len(dropped), len(s.docs))
	}
	for _, d := range kept {
		if w, ok := s.want[d.ID]; ok {
			t.Errorf("%s kept, want dropped as %s of %s", d.ID, w[1], w[0])
		}
	}
	for _, d := range dropped {
		w, ok := s.want[d.ID]
		if !ok {
			t.Errorf("%s dropped (%+v), want kept", d.ID, d.Drop)
			continue
		}
		if d.Drop.DupOf != w[0] || d.Drop.Reason != w[1] {
			t.Errorf("%s dropped as %s of %s, want %s of %s", d.ID, d.Drop.Reason, d.Drop.DupOf, w[1], w[0])
		}
		if d.Drop.Reason == ReasonMinHash {
			var v float64
			if _, err := fmt.Sscan(d.Drop.Value, &v); err != nil || v < 0.8 || v > 1 {
				t.Errorf("%s: similarity %q", d.ID, d.Drop.Value)
			}
		}
	}
}

func TestRunRoutesDuplicates(t *testing.T) {
	s := genCorpus(1, 300, "a", "web")
	in := filepath.Join(t.TempDir(), "in")
	writeInput(t, in, s.docs, 200_000)
	outs := map[int]string{}
	for _, workers := range []int{1, 4} {
		out := filepath.Join(t.TempDir(), fmt.Sprint("out", workers))
		st, res, err := Run(context.Background(), Config{Inputs: []string{in}, Out: out, Workers: workers, TargetBytes: 150_000})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Balanced(); err != nil {
			t.Fatal(err)
		}
		if int(st.Out.Docs)+len(s.want) != len(s.docs) || int(res.Summary.Dropped) != len(s.want) {
			t.Fatalf("kept %d, dropped %d; want %d dropped of %d", st.Out.Docs, res.Summary.Dropped, len(s.want), len(s.docs))
		}
		checkRouting(t, out, s)
		if m := st.Metrics["dedup/dup_rate/web"]; m == nil || m.N != int64(len(s.docs)) {
			t.Errorf("per-source duplicate rate metric: %+v", m)
		}
		h := st.Histograms["dedup/cluster_size"]
		if h == nil || h.Counts[1] != 100 { // 100 clusters of 3
			t.Errorf("cluster-size histogram %+v, want 100 clusters of size 3", h)
		}
		var rep ClusterReport
		b, err := os.ReadFile(filepath.Join(out, ClustersName))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.Clusters) != 20 || rep.Clusters[0].Size != 3 || len(rep.Clusters[0].Members) != 3 ||
			rep.Clusters[0].Members[0].URL == "" || rep.Clusters[0].Members[0].FirstLine == "" {
			t.Errorf("cluster report: %+v", rep.Clusters[:1])
		}
		outs[workers] = out
	}
	sameFiles(t, outs[1], outs[4])
}

// sameFiles checks that two output trees hold byte-identical shards,
// manifests and reports, apart from the files named in skip.
func sameFiles(t *testing.T, a, b string, skip ...string) {
	t.Helper()
	list := func(dir string) map[string][]byte {
		m := map[string][]byte{}
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				rel, _ := filepath.Rel(dir, p)
				if !slices.Contains(skip, rel) {
					m[rel], _ = os.ReadFile(p)
				}
			}
			return nil
		})
		return m
	}
	fa, fb := list(a), list(b)
	var names []string
	for k := range fa {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(fa) != len(fb) {
		t.Fatalf("%d files vs %d", len(fa), len(fb))
	}
	for _, k := range names {
		if !bytes.Equal(fa[k], fb[k]) {
			t.Errorf("%s differs", k)
		}
	}
}

// TestRunResume interrupts pass 2 after a checkpoint and checks that the
// rerun ends with the same files as an uninterrupted run.
func TestRunResume(t *testing.T) {
	s := genCorpus(2, 240, "r", "web")
	in := filepath.Join(t.TempDir(), "in")
	writeInput(t, in, s.docs, 100_000)
	ref := filepath.Join(t.TempDir(), "ref")
	if _, _, err := Run(context.Background(), Config{Inputs: []string{in}, Out: ref, Workers: 2, TargetBytes: 40_000}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	_, _, err := Run(ctx, Config{Inputs: []string{in}, Out: out, Workers: 2, TargetBytes: 40_000,
		Progress: func(pass string, docs, _, total, _ int64) {
			if pass == "route" && docs > total/2 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, DecisionsName)); err != nil {
		t.Fatalf("no saved decision after the interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, shards.CheckpointName)); err != nil {
		t.Fatalf("no checkpoint after the interrupted run: %v", err)
	}
	if _, _, err := Run(context.Background(), Config{Inputs: []string{in}, Out: out, Workers: 3, TargetBytes: 40_000}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, ref, out)
	checkRouting(t, out, s)
}

// TestRunStoreIncremental dedups a second crawl against the first through
// the store.
func TestRunStoreIncremental(t *testing.T) {
	tmp := t.TempDir()
	store := filepath.Join(tmp, "store")
	first := genCorpus(3, 90, "a", "crawl1")
	in1 := filepath.Join(tmp, "in1")
	writeInput(t, in1, first.docs, 0)
	if _, _, err := Run(context.Background(), Config{Inputs: []string{in1}, Out: filepath.Join(tmp, "out1"), StorePath: store}); err != nil {
		t.Fatal(err)
	}
	kept1 := testutil.ReadDocs(t, filepath.Join(tmp, "out1"))

	// The second crawl: re-captures of kept documents (one exact with other
	// case, one with a word changed) and new documents.
	second := genCorpus(4, 30, "b", "crawl2")
	want := map[string][2]string{}
	for k, v := range second.want {
		want[k] = v
	}
	for i, d := range kept1[:40] {
		c := *d
		c.ID, c.Source = fmt.Sprintf("re%03d", i), "crawl2"
		c.Quality = 1 // higher quality does not matter: stored documents survive
		reason := ReasonExact
		if i%2 == 0 {
			c.Text = strings.ToUpper(c.Text)
		} else {
			w := strings.Fields(c.Text)
			w[len(w)/2] = "recaptured"
			c.Text = strings.Join(w, " ")
			reason = ReasonMinHash
		}
		second.docs = append(second.docs, &c)
		want[c.ID] = [2]string{d.ID, reason}
	}
	second.want = want
	in2 := filepath.Join(tmp, "in2")
	writeInput(t, in2, second.docs, 0)
	out2 := filepath.Join(tmp, "out2")
	_, res, err := Run(context.Background(), Config{Inputs: []string{in2}, Out: out2, StorePath: store})
	if err != nil {
		t.Fatal(err)
	}
	checkRouting(t, out2, second)
	if res.Summary.StoreExact != 20 || res.Summary.StoreMinHash < 20 {
		t.Errorf("store matches: %+v", res.Summary)
	}
	// Re-running the first crawl into a new directory keeps what it kept:
	// a stored document is never a duplicate of itself.
	_, res, err = Run(context.Background(), Config{Inputs: []string{in1}, Out: filepath.Join(tmp, "out1b"), StorePath: store})
	if err != nil {
		t.Fatal(err)
	}
	if int(res.Summary.Dropped) != len(first.want) {
		t.Errorf("rerun of the first crawl dropped %d, want %d", res.Summary.Dropped, len(first.want))
	}
	st, err := OpenStore(store, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.Len()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(kept1) + len(second.docs) - len(second.want)); n != want {
		t.Errorf("store holds %d documents, want %d", n, want)
	}
}

// repeatCase is a generated corpus over two input directories with
// repeated ids: the same id with the same text, with another text, three
// times, and the first and second member of a near-duplicate pair again.
type repeatCase struct {
	in1, in2 []*shards.Document
	s        synth // want for the first occurrences
	// repeats are the later occurrences, in input order.
	repeats []*shards.Document
}

func genRepeats() repeatCase {
	g := genCorpus(5, 60, "g", "web")
	r := rand.New(rand.NewSource(9))
	doc := func(id, text string) *shards.Document {
		return &shards.Document{ID: id, Source: "web", URL: "https://example.org/" + id, Text: text, Quality: 0.5, HasQuality: true}
	}
	words := randomWords(r, 200)
	pa := doc("pair-a", strings.Join(words, " "))
	words[50], words[150] = "changed", "edited"
	pb := doc("pair-b", strings.Join(words, " "))
	x := doc("rep-x", strings.Join(randomWords(r, 120), " "))
	y := doc("rep-y", strings.Join(randomWords(r, 120), " "))
	xAgain := *x
	yOther := doc("rep-y", strings.Join(randomWords(r, 130), " ")) // same id, other text
	xThird := doc("rep-x", "a third copy of rep-x with a text of its own")
	aAgain := *pa
	bAsA := doc("pair-b", pa.Text) // pair-b again, with pair-a's text
	half := len(g.docs) / 2
	c := repeatCase{s: synth{want: g.want}}
	c.in1 = append(append([]*shards.Document{}, g.docs[:half]...), pa, x, y, pb)
	c.in2 = append([]*shards.Document{&xAgain, &aAgain}, g.docs[half:]...)
	c.in2 = append(c.in2, yOther, xThird, bAsA)
	c.repeats = []*shards.Document{&xAgain, &aAgain, yOther, xThird, bAsA}
	c.s.docs = append(append([]*shards.Document{}, g.docs...), pa, pb, x, y)
	c.s.want["pair-b"] = [2]string{"pair-a", ReasonMinHash}
	return c
}

// checkRepeats checks the routing of a corpus with repeated ids: every
// later occurrence dropped as dedup:repeated_id of itself, in input order;
// the first occurrences routed as s wants.
func checkRepeats(t *testing.T, out string, s synth, repeats []*shards.Document) {
	t.Helper()
	kept := testutil.ReadDocs(t, out)
	dropped := testutil.ReadDocs(t, filepath.Join(out, shards.DroppedDir))
	var firsts, reps []*shards.Document
	for _, d := range dropped {
		if d.Drop.Reason == ReasonRepeatedID {
			if d.Drop.DupOf != d.ID || d.Drop.Value != "1" {
				t.Errorf("%s: repeated id dropped with %+v", d.ID, d.Drop)
			}
			reps = append(reps, d)
		} else {
			firsts = append(firsts, d)
		}
	}
	if len(reps) != len(repeats) {
		t.Fatalf("%d documents dropped as repeated ids, want %d", len(reps), len(repeats))
	}
	for k, d := range reps {
		if d.ID != repeats[k].ID || d.Text != repeats[k].Text {
			t.Errorf("repeat %d: %s %.30q, want %s %.30q", k, d.ID, d.Text, repeats[k].ID, repeats[k].Text)
		}
	}
	text := map[string]string{}
	for _, d := range s.docs {
		text[d.ID] = d.Text
	}
	seen := map[string]bool{}
	for _, d := range append(append([]*shards.Document{}, kept...), firsts...) {
		if seen[d.ID] || text[d.ID] != d.Text {
			t.Errorf("%s: routed twice (%v) or not its first occurrence's text", d.ID, seen[d.ID])
		}
		seen[d.ID] = true
	}
	if len(kept)+len(firsts) != len(s.docs) {
		t.Fatalf("%d kept + %d dropped first occurrences != %d", len(kept), len(firsts), len(s.docs))
	}
	for _, d := range kept {
		if w, ok := s.want[d.ID]; ok {
			t.Errorf("%s kept, want dropped as %s of %s", d.ID, w[1], w[0])
		}
	}
	for _, d := range firsts {
		if w, ok := s.want[d.ID]; !ok || d.Drop.DupOf != w[0] || d.Drop.Reason != w[1] {
			t.Errorf("%s dropped as %s of %s, want %q of %q", d.ID, d.Drop.Reason, d.Drop.DupOf, w[1], w[0])
		}
	}
}

func TestRunRepeatedIDs(t *testing.T) {
	c := genRepeats()
	tmp := t.TempDir()
	in1, in2 := filepath.Join(tmp, "in1"), filepath.Join(tmp, "in2")
	writeInput(t, in1, c.in1, 60_000)
	writeInput(t, in2, c.in2, 60_000)
	inputs := []string{in1, in2}
	n := len(c.in1) + len(c.in2)
	outs := map[int]string{}
	for _, workers := range []int{1, 4} {
		out := filepath.Join(tmp, fmt.Sprint("out", workers))
		st, res, err := Run(context.Background(), Config{Inputs: inputs, Out: out, Workers: workers, TargetBytes: 40_000})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Balanced(); err != nil {
			t.Fatal(err)
		}
		nd := len(c.s.want) + len(c.repeats)
		if st.In.Docs != int64(n) || int(st.Out.Docs)+nd != n || int(res.Summary.Dropped) != nd ||
			res.Summary.Documents != int64(n) || res.Summary.RepeatedIDs != int64(len(c.repeats)) ||
			st.Dropped[ReasonRepeatedID].Docs != int64(len(c.repeats)) {
			t.Fatalf("in %d, kept %d, summary %+v, drops %+v; want %d in, %d dropped, %d repeated",
				st.In.Docs, st.Out.Docs, res.Summary, st.Dropped, n, nd, len(c.repeats))
		}
		checkRepeats(t, out, c.s, c.repeats)
		// 20 generated clusters of 3 and the pair: repeats of pair-a (its
		// cluster's first member) and pair-b are not counted again.
		h := st.Histograms["dedup/cluster_size"]
		if h == nil || h.Counts[0] != 1 || h.Counts[1] != 20 || st.Metrics["dedup/cluster_size"].N != 21 {
			t.Errorf("cluster-size histogram %+v, want 20 clusters of 3 and one of 2", h)
		}
		// The cluster report lists members by input position.
		var rep ClusterReport
		b, err := os.ReadFile(filepath.Join(out, ClustersName))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		for _, rc := range rep.Clusters {
			for _, m := range rc.Members {
				if strings.HasPrefix(m.ID, "pair-") {
					t.Errorf("the pair (size 2) is not among the 20 largest clusters: %+v", rc)
				}
				base, _, _ := strings.Cut(m.ID, "-")
				if sb, _, _ := strings.Cut(rc.Survivor, "-"); m.FirstLine == "" || base != sb {
					t.Errorf("cluster of %s lists %+v: not the document at the member's position", rc.Survivor, m)
				}
			}
		}
		outs[workers] = out
	}
	sameFiles(t, outs[1], outs[4])

	// Interrupted in pass 2, resumed from the saved decision.
	for _, stop := range []int64{3, int64(n / 2), int64(n - 3)} {
		out := filepath.Join(t.TempDir(), "out")
		ctx, cancel := context.WithCancel(context.Background())
		_, _, err := Run(ctx, Config{Inputs: inputs, Out: out, Workers: 2, TargetBytes: 40_000,
			Progress: func(pass string, docs, _, _, _ int64) {
				if pass == "route" && docs >= stop {
					cancel()
				}
			}})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("interrupted run: %v", err)
		}
		var saved decisionsFile
		if b, err := os.ReadFile(filepath.Join(out, DecisionsName)); err != nil || json.Unmarshal(b, &saved) != nil ||
			saved.Result == nil || len(saved.Result.Repeated) != len(c.repeats) {
			t.Fatalf("saved decision does not list the repeats: %v %+v", err, saved.Result)
		}
		if _, _, err := Run(context.Background(), Config{Inputs: inputs, Out: out, Workers: 3, TargetBytes: 40_000}); err != nil {
			t.Fatal(err)
		}
		sameFiles(t, outs[1], out)
	}
}

// readDolma reads a Dolma JSONL dump as documents.
func readDolma(t *testing.T, path string) []*shards.Document {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var docs []*shards.Document
	for sc.Scan() {
		var v struct {
			ID     string `json:"id"`
			Source string `json:"source"`
			Text   string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, &shards.Document{ID: v.ID, Source: v.Source, Text: v.Text})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestRunDolmaDumpsTwice deduplicates two Dolma dumps that hold the same
// ten documents: the second dump's copies are dropped as repeated ids.
func TestRunDolmaDumpsTwice(t *testing.T) {
	first := readDolma(t, testutil.SharedData(t, "dedup/dolma_deduper_input_documents_000.jsonl.gz"))
	second := readDolma(t, testutil.SharedData(t, "jsonl/dolma_provided_documents_000.jsonl.gz"))
	if len(first) != 10 || len(second) != 10 {
		t.Fatalf("%d and %d documents, want 10 and 10", len(first), len(second))
	}
	tmp := t.TempDir()
	in1, in2 := filepath.Join(tmp, "in1"), filepath.Join(tmp, "in2")
	writeInput(t, in1, first, 0)
	writeInput(t, in2, second, 0)
	var outs []string
	for _, workers := range []int{1, 4} {
		out := filepath.Join(tmp, fmt.Sprint("out", workers))
		st, res, err := Run(context.Background(), Config{Inputs: []string{in1, in2}, Out: out, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Balanced(); err != nil {
			t.Fatal(err)
		}
		if st.In.Docs != 20 || st.Dropped[ReasonRepeatedID].Docs != 10 || res.Summary.RepeatedIDs != 10 ||
			!slices.Equal(res.Repeated, []int64{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) {
			t.Fatalf("in %d, drops %+v, repeated %v", st.In.Docs, st.Dropped, res.Repeated)
		}
		want := synth{docs: first, want: map[string][2]string{}}
		for id, dec := range res.Decisions {
			if dec.Reason != "" {
				want.want[id] = [2]string{dec.DupOf, dec.Reason}
			}
		}
		checkRepeats(t, out, want, second)
		outs = append(outs, out)
	}
	sameFiles(t, outs[0], outs[1])
}

// TestRunHelperProcess is the child of TestRunSurvivesKill9: it runs dedup
// with a store and stops (to be killed) in the middle of pass 2.
func TestRunHelperProcess(t *testing.T) {
	dir := os.Getenv("SMELT_DEDUP_RUN_CHILD")
	if dir == "" {
		t.Skip("helper process for TestRunSurvivesKill9")
	}
	_, _, err := Run(context.Background(), Config{Inputs: []string{filepath.Join(dir, "in")}, Out: filepath.Join(dir, "out"),
		StorePath: filepath.Join(dir, "store"), Workers: 2, TargetBytes: 40_000,
		Progress: func(pass string, docs, _, total, _ int64) {
			if pass == "route" && docs == total/2 {
				fmt.Println("halfway")
				time.Sleep(time.Minute)
			}
		}})
	fmt.Println("error:", err)
}

// TestRunSurvivesKill9 kills a dedup run in the middle of pass 2 and checks
// that the rerun ends with the same files as an uninterrupted run, and the
// store with the same documents.
func TestRunSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	s := genCorpus(8, 240, "k", "web")
	ref, dir := t.TempDir(), t.TempDir()
	for _, d := range []string{ref, dir} {
		writeInput(t, filepath.Join(d, "in"), s.docs, 100_000)
	}
	cfg := func(d string) Config {
		return Config{Inputs: []string{filepath.Join(d, "in")}, Out: filepath.Join(d, "out"),
			StorePath: filepath.Join(d, "store"), Workers: 2, TargetBytes: 40_000}
	}
	if _, _, err := Run(context.Background(), cfg(ref)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SMELT_DEDUP_RUN_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	half := false
	for sc.Scan() {
		if sc.Text() == "halfway" {
			half = true
			break
		}
		if strings.HasPrefix(sc.Text(), "error:") {
			t.Fatal(sc.Text())
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !half {
		t.Fatal("child never got halfway")
	}
	if _, err := os.Stat(filepath.Join(dir, "out", shards.CheckpointName)); err != nil {
		t.Fatalf("no checkpoint left by the killed run: %v", err)
	}
	if _, _, err := Run(context.Background(), cfg(dir)); err != nil {
		t.Fatal(err)
	}
	// The saved decision names its store, which differs here.
	sameFiles(t, filepath.Join(ref, "out"), filepath.Join(dir, "out"), DecisionsName)
	for _, d := range []string{ref, dir} {
		st, err := OpenStore(filepath.Join(d, "store"), DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		n, err := st.Len()
		st.Close()
		if err != nil || n != int64(len(s.docs)-len(s.want)) {
			t.Errorf("%s: store holds %d documents (%v), want %d", d, n, err, len(s.docs)-len(s.want))
		}
	}
}
