package tokenize

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	webOnce sync.Once
	webText string
)

// englishWebText is the text of the real Common Crawl English documents in
// ../shared/data/jsonl (cc_net "head" bucket, about 160 KiB).
func englishWebText(b *testing.B) string {
	dir := sharedDataDir(b)
	webOnce.Do(func() {
		var sb strings.Builder
		for _, f := range []string{"dolma_cc_en_head-0091.jsonl", "dolma_cc_en_head-0174.jsonl"} {
			raw, err := readMaybeGzip(filepath.Join(dir, "jsonl", f))
			if err != nil {
				b.Fatal(err)
			}
			for _, line := range strings.Split(string(raw), "\n") {
				var doc struct {
					Text string `json:"text"`
				}
				if json.Unmarshal([]byte(line), &doc) == nil {
					sb.WriteString(doc.Text)
					sb.WriteString("\n")
				}
			}
		}
		webText = sb.String()
	})
	return webText
}

// BenchmarkEncode measures single-thread encoding of English web text, smelt
// and tiktoken-go side by side, for each encoding. MB/s is per thread.
func BenchmarkEncode(b *testing.B) {
	text := englishWebText(b)
	for _, enc := range allEncodings {
		tok := mustGet(b, enc)
		ref := refEncoding(b, enc)
		b.Run(enc+"/smelt", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			buf := make([]uint32, 0, len(text))
			for b.Loop() {
				buf = tok.AppendEncodeOrdinary(buf[:0], text)
			}
		})
		b.Run(enc+"/tiktoken-go", func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				ref.EncodeOrdinary(text)
			}
		})
	}
}

// threadCPU returns the CPU time used by the calling OS thread; with the
// goroutine locked to its thread it measures one side of a comparison even
// when other processes compete for the cores (this machine is shared).
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEncodeVsTiktokenGo times both implementations on the same input
// in the same run, alternating, and reports smelt's speed-up as "x" (wall
// time) and "x-cpu" (thread CPU time), with MiB/s per thread for each.
func BenchmarkEncodeVsTiktokenGo(b *testing.B) {
	text := englishWebText(b)
	for _, enc := range allEncodings {
		tok := mustGet(b, enc)
		ref := refEncoding(b, enc)
		b.Run(enc, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var ours, theirs, oursCPU, theirsCPU time.Duration
			buf := make([]uint32, 0, len(text))
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				t0, c0 := time.Now(), threadCPU()
				buf = tok.AppendEncodeOrdinary(buf[:0], text)
				t1, c1 := time.Now(), threadCPU()
				ref.EncodeOrdinary(text)
				t2, c2 := time.Now(), threadCPU()
				ours += t1.Sub(t0)
				theirs += t2.Sub(t1)
				oursCPU += c1 - c0
				theirsCPU += c2 - c1
			}
			mib := float64(len(text)) * float64(b.N) / (1 << 20)
			b.ReportMetric(float64(theirs)/float64(ours), "x")
			b.ReportMetric(mib/ours.Seconds(), "smelt-MiB/s")
			b.ReportMetric(mib/theirs.Seconds(), "tiktoken-go-MiB/s")
			if oursCPU > 0 {
				b.ReportMetric(float64(theirsCPU)/float64(oursCPU), "x-cpu")
				b.ReportMetric(mib/oursCPU.Seconds(), "smelt-cpu-MiB/s")
				b.ReportMetric(mib/theirsCPU.Seconds(), "tiktoken-go-cpu-MiB/s")
			}
		})
	}
}

// BenchmarkEncodeParallel encodes documents from all goroutines at once
// (compare ns/op with -cpu 1,2,4...).
func BenchmarkEncodeParallel(b *testing.B) {
	text := englishWebText(b)
	docs := strings.SplitAfter(text, "\n")
	tok := mustGet(b, "r50k_base")
	b.SetBytes(int64(len(text)))
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]uint32, 0, 1<<16)
		for pb.Next() {
			for _, d := range docs {
				buf = tok.AppendEncodeOrdinary(buf[:0], d)
			}
		}
	})
}

// BenchmarkRankLookup compares the rank table with a Go map[string]uint32 on
// every pre-token of the English web text, alternating the two in one loop
// and timing each by thread CPU time; "x" is the table's speed-up.
func BenchmarkRankLookup(b *testing.B) {
	text := englishWebText(b)
	tok := mustGet(b, "r50k_base")
	ct := classTable()
	var pieces []string
	for p := 0; p < len(text); {
		e := tok.split(ct, text, p)
		pieces = append(pieces, text[p:e])
		p = e
	}
	m := make(map[string]uint32)
	for r := uint32(0); ; r++ {
		s, ok := tok.ranks.bytesOf(r)
		if !ok {
			break
		}
		m[s] = r
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tableCPU, mapCPU time.Duration
	hits := 0
	for b.Loop() {
		c0 := threadCPU()
		for _, p := range pieces {
			if _, ok := tok.ranks.get(p); ok {
				hits++
			}
		}
		c1 := threadCPU()
		for _, p := range pieces {
			if _, ok := m[p]; ok {
				hits--
			}
		}
		c2 := threadCPU()
		tableCPU += c1 - c0
		mapCPU += c2 - c1
	}
	if hits != 0 {
		b.Fatal("table and map disagree")
	}
	lookups := float64(b.N * len(pieces))
	b.ReportMetric(float64(tableCPU.Nanoseconds())/lookups, "table-ns/lookup")
	b.ReportMetric(float64(mapCPU.Nanoseconds())/lookups, "gomap-ns/lookup")
	b.ReportMetric(float64(mapCPU)/float64(tableCPU), "x")
}

// BenchmarkEncodeRepetitive is the worst case for the merge: one long piece
// (a 1 MB run of one letter; a 100 KB run of digits for r50k).
func BenchmarkEncodeRepetitive(b *testing.B) {
	for _, c := range []struct{ enc, text string }{
		{"o200k_base", strings.Repeat("x", 1_000_000)},
		{"r50k_base", strings.Repeat("7", 100_000)},
		{"r50k_base", strings.Repeat(" ", 100_000) + "x"},
	} {
		tok := mustGet(b, c.enc)
		b.Run(fmt.Sprintf("%s/%dx%q", c.enc, len(c.text), c.text[:1]), func(b *testing.B) {
			b.SetBytes(int64(len(c.text)))
			for b.Loop() {
				tok.EncodeOrdinary(c.text)
			}
		})
	}
}
