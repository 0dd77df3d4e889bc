package lineage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/smelt-dev/smelt/shards"
)

// TestMeasureTakedown measures, on a generated run of
// SMELT_LINEAGE_BENCH_DOCS documents (unset: skipped), a takedown of
// SMELT_LINEAGE_BENCH_URLS URLs (default 1% of the documents) against
// rerunning the tokenize and export steps, and the lineage query time.
// SMELT_LINEAGE_BENCH_DIR keeps the run there for `smelt lineage`.
//
//	SMELT_LINEAGE_BENCH_DOCS=30000 go test -run TestMeasureTakedown -v -timeout 1h ./lineage/
func TestMeasureTakedown(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SMELT_LINEAGE_BENCH_DOCS"))
	if n <= 0 {
		t.Skip("set SMELT_LINEAGE_BENCH_DOCS to measure")
	}
	urls, _ := strconv.Atoi(os.Getenv("SMELT_LINEAGE_BENCH_URLS"))
	if urls <= 0 {
		urls = n / 100
	}
	dir := os.Getenv("SMELT_LINEAGE_BENCH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	ctx := context.Background()
	files := (n + 4999) / 5000
	start := time.Now()
	run := filepath.Join(dir, "run")
	if _, err := os.Stat(filepath.Join(run, "export-megatron", "export.json")); err == nil && os.Getenv("SMELT_LINEAGE_BENCH_REUSE") != "" {
		// A run a earlier measurement kept in SMELT_LINEAGE_BENCH_DIR.
		t.Logf("reusing the run in %s", run)
	} else {
		writeCrawl(t, dir, files, n/files, 5)
		recipe := strings.Replace(testRecipe, "tasks: 2", fmt.Sprintf("tasks: %d", files), 1)
		// GPT-2's tokenizer: training one would dominate the run's time.
		recipe = strings.Replace(recipe, "  train:\n    vocab_size: 300\n", "  name: gpt2\n", 1)
		run = runPipeline(t, dir, recipe)
		t.Logf("run of %d documents built in %v", n, time.Since(start).Round(time.Second))
	}

	// The kept documents' URLs, from the dedup step's output (what
	// tokenize read): a lineage lookup of every document would hold the
	// whole run's paths in this process's memory and distort what follows.
	kept, err := keptURLs(run)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(kept)
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(kept), func(i, j int) { kept[i], kept[j] = kept[j], kept[i] })
	if urls > len(kept) {
		urls = len(kept)
	}
	// SMELT_LINEAGE_BENCH_BUILD_ONLY=1: write the URLs to take down to
	// DIR/urls.txt and stop, for measuring the smelt commands themselves
	// (lineage/testdata/measure_takedown.sh).
	if os.Getenv("SMELT_LINEAGE_BENCH_BUILD_ONLY") != "" {
		if err := os.WriteFile(filepath.Join(dir, "urls.txt"), []byte(strings.Join(kept[:urls], "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d kept documents; %d URLs to take down in %s", len(kept), urls, filepath.Join(dir, "urls.txt"))
		return
	}
	start = time.Now()
	ix, err := Open(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index opened (built if missing or stale) in %v", time.Since(start).Round(time.Millisecond))
	t.Logf("%d documents kept", len(kept))
	var lat []time.Duration
	for _, u := range kept[:20] {
		s := time.Now()
		if got, err := ix.Lookup(Query{URL: u}, 0); err != nil || len(got) == 0 {
			t.Fatalf("lookup %s: %v %v", u, got, err)
		}
		lat = append(lat, time.Since(s))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("lineage query by URL (index open): median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])
	ix.Close()

	counts := []int{urls}
	if v := os.Getenv("SMELT_LINEAGE_BENCH_URLS"); strings.Contains(v, ",") {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			c, _ := strconv.Atoi(f)
			counts = append(counts, min(c, len(kept)))
		}
	}
	// Each takedown on a copy of the run, then the rerun on the run.
	for _, c := range counts {
		scratch := filepath.Join(dir, fmt.Sprintf("takedown-%d", c))
		os.RemoveAll(scratch)
		if err := copyTree(run, scratch); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		// Phase timings at debug level, for the takedown only.
		prev := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
		// SMELT_LINEAGE_BENCH_PROF=FILE: a CPU profile of the takedown.
		var prof *os.File
		if p := os.Getenv("SMELT_LINEAGE_BENCH_PROF"); p != "" {
			if prof, err = os.Create(fmt.Sprintf("%s.%d", p, c)); err != nil {
				t.Fatal(err)
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				t.Fatal(err)
			}
		}
		start = time.Now()
		cpu := cpuTime()
		rec, err := Takedown(ctx, scratch, Request{URLs: kept[:c]}, TakedownOptions{})
		cpu = cpuTime() - cpu
		if prof != nil {
			pprof.StopCPUProfile()
			prof.Close()
		}
		slog.SetDefault(prev)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("takedown of %d URLs (%d documents, %d files changed): %v, %v CPU (load average %s)", c, len(rec.Matched), len(rec.Files), time.Since(start).Round(time.Millisecond), cpu.Round(time.Millisecond), loadAvg())
		os.RemoveAll(scratch)
	}
	start = time.Now()
	cpu := cpuTime()
	rerunFromTokenize(t, run)
	t.Logf("rerun of tokenize and the exports (all %d documents): %v, %v CPU (load average %s)", len(kept), time.Since(start).Round(time.Millisecond), (cpuTime() - cpu).Round(time.Millisecond), loadAvg())
}

// keptURLs lists the URLs of the documents in the run's dedup output.
func keptURLs(run string) ([]string, error) {
	dir := filepath.Join(run, "dedup")
	m, err := shards.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	var urls []string
	err = forEachDoc(dir, m, func(_ string, _ int64, d *shards.Document) {
		urls = append(urls, d.URL)
	})
	return urls, err
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the machine's 1-minute load average (for the log).
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// TestProfileTakedown takes down SMELT_LINEAGE_PROFILE_URLS kept URLs
// (default 200) of the existing run SMELT_LINEAGE_PROFILE_RUN (unset:
// skipped), or the first of those SMELT_LINEAGE_PROFILE_URLFILE lists,
// logging each phase's time; run it with -cpuprofile.
func TestProfileTakedown(t *testing.T) {
	run := os.Getenv("SMELT_LINEAGE_PROFILE_RUN")
	if run == "" {
		t.Skip("set SMELT_LINEAGE_PROFILE_RUN")
	}
	n, _ := strconv.Atoi(os.Getenv("SMELT_LINEAGE_PROFILE_URLS"))
	if n <= 0 {
		n = 200
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx := context.Background()
	start := time.Now()
	var urls []string
	if f := os.Getenv("SMELT_LINEAGE_PROFILE_URLFILE"); f != "" {
		// The URLs measure_takedown.sh takes down (its DIR/urls.txt).
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		urls = strings.Fields(string(data))
	} else {
		ix, err := Open(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("index open: %v", time.Since(start))
		ls, err := ix.Lookup(Query{Domain: "example"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ix.Close()
		// The URLs TestMeasureTakedown takes down: kept documents at random.
		for _, l := range ls {
			if l.Status == "kept (tokenized)" {
				urls = append(urls, l.URL)
			}
		}
		sort.Strings(urls)
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(urls), func(i, j int) { urls[i], urls[j] = urls[j], urls[i] })
	}
	urls = urls[:min(n, len(urls))]
	start = time.Now()
	rec, err := Takedown(ctx, run, Request{URLs: urls}, TakedownOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("takedown of %d URLs (%d documents, %d files): %v", len(urls), len(rec.Matched), len(rec.Files), time.Since(start))
}

// TestMeasureRewriteFloor measures the least any takedown that rewrites
// the files of SMELT_LINEAGE_FLOOR_RECORD (a takedown.json) can cost:
// each file of the run SMELT_LINEAGE_FLOOR_RUN is read, hashed, written
// to a new file, hashed and synced, with no decoding, no compression and
// nothing removed. measure_takedown.sh runs it as a process under
// /usr/bin/time, beside the takedown and the rerun it is compared with.
func TestMeasureRewriteFloor(t *testing.T) {
	run, recPath := os.Getenv("SMELT_LINEAGE_FLOOR_RUN"), os.Getenv("SMELT_LINEAGE_FLOOR_RECORD")
	if run == "" || recPath == "" {
		t.Skip("set SMELT_LINEAGE_FLOOR_RUN and SMELT_LINEAGE_FLOOR_RECORD to measure")
	}
	data, err := os.ReadFile(recPath)
	if err != nil {
		t.Fatal(err)
	}
	var f takedownsFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	out := t.TempDir()
	buf := make([]byte, 1<<20)
	var files, total int64
	start, cpu := time.Now(), cpuTime()
	for _, rec := range f.Takedowns {
		for _, fc := range rec.Files {
			if seen[fc.Path] {
				continue
			}
			seen[fc.Path] = true
			n, err := rewriteCopy(filepath.Join(run, fc.Path), out, buf)
			if errors.Is(err, os.ErrNotExist) {
				continue // a file the takedown created (takedown.json itself)
			}
			if err != nil {
				t.Fatal(err)
			}
			files++
			total += n
		}
	}
	t.Logf("rewrote %d files, %d MB: %.1f s wall, %.1f CPU-s (this process)",
		files, total>>20, time.Since(start).Seconds(), (cpuTime() - cpu).Seconds())
}

// rewriteCopy copies path into a new file in dir through buf, hashing
// what it reads and what it writes with sha256 (a takedown's audit
// record holds both), syncs and removes the copy; it returns the bytes
// copied.
func rewriteCopy(path, dir string, buf []byte) (int64, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "copy")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	hin, hout := sha256.New(), sha256.New()
	var n int64
	for {
		k, rerr := in.Read(buf)
		if k > 0 {
			hin.Write(buf[:k])
			if _, err := out.Write(buf[:k]); err != nil {
				return n, err
			}
			hout.Write(buf[:k])
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, rerr
		}
	}
	if hex.EncodeToString(hin.Sum(nil)) != hex.EncodeToString(hout.Sum(nil)) {
		return n, fmt.Errorf("%s: copy differs", path)
	}
	return n, out.Sync()
}
