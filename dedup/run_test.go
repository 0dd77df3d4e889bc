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
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

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
	if _, err := os.Stat(filepath.Join(out, WorkDirName, "cluster", clusterDone)); err != nil {
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
	// Each re-capture is counted once, by its reason.
	if res.Summary.StoreExact != 20 || res.Summary.StoreMinHash != 20 || res.Summary.StoreDocuments != int64(len(kept1)) {
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
	ss, err := ReadStoreStats(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(kept1) + len(second.docs) - len(second.want)); ss.Documents != want || ss.Segments != 2 {
		n := ss.Documents
		t.Errorf("store holds %d documents, want %d", n, want)
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
