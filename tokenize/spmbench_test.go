package tokenize

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// BenchmarkVsSentencePiece compares smelt with the SentencePiece library
// (Debian's 0.1.97 through its Python binding, which encodes one text on
// one thread) on the test models, in the same run, on the same real
// documents encoded one at a time: CPU seconds per pass (smelt: its
// thread's CPU; the library: process CPU around the encode loop alone). Run
//
//	go test ./tokenize/ -run '^$' -bench BenchmarkVsSentencePiece -benchtime 3x
func BenchmarkVsSentencePiece(b *testing.B) {
	py := spmPython(b)
	docs := realDocs(b, 1500)
	total := 0
	for _, d := range docs {
		total += len(d)
	}
	in := writeB64(b, docs)
	for _, m := range spmModels {
		b.Run(m, func(b *testing.B) {
			runtime.GC()
			c0 := procCPU()
			tok, err := Load(spmModelPath(m))
			if err != nil {
				b.Fatal(err)
			}
			loadCPU := procCPU() - c0
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			buf := make([]uint32, 0, 1<<16)
			for _, d := range docs {
				buf = tok.AppendEncodeOrdinary(buf[:0], d)
			}
			var ours time.Duration
			rounds := 0
			for b.Loop() {
				c := threadCPU()
				for _, d := range docs {
					buf = tok.AppendEncodeOrdinary(buf[:0], d)
				}
				ours += threadCPU() - c
				rounds++
			}
			out, err := exec.Command(py, filepath.Join(spmDir, "ref.py"), "bench", spmModelPath(m), in).Output()
			if err != nil {
				b.Fatalf("reference: %v", err)
			}
			var refCPU float64
			var refBytes, refIDs int
			if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &refCPU, &refBytes, &refIDs); err != nil || refBytes != total {
				b.Fatalf("reference printed %q (%v)", out, err)
			}
			mb := float64(total) / 1e6
			oursPer := ours.Seconds() / float64(rounds)
			b.ReportMetric(mb/oursPer, "smelt-MB/cpu-s")
			b.ReportMetric(mb/refCPU, "spm-MB/cpu-s")
			b.ReportMetric(refCPU/oursPer, "x-encode")
			b.ReportMetric(loadCPU.Seconds(), "smelt-load-cpu-s")
		})
	}
}
