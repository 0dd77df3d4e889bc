package ingest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A record far over the limit is skipped without being buffered: the
// reader's allocations stay far below the record's size.
func TestWARCHugeRecordMemoryBounded(t *testing.T) {
	recs := genWARC(2)
	huge := warcRec{typ: "response", id: "urn:uuid:huge", uri: "https://example.org/huge", ctype: "application/http; msgtype=response",
		block: httpResp(200, "Content-Type: text/html", bytes.Repeat([]byte("<p>lots of text</p>\n"), (12<<20)/20))}
	var b bytes.Buffer
	b.Write(concatWARC(recs[:3], "1.0"))
	b.Write(huge.bytes("1.0"))
	b.Write(concatWARC(recs[3:], "1.0"))
	huge.block = nil
	for _, name := range []string{"huge.warc", "huge.warc.gz"} {
		data := b.Bytes()
		if strings.HasSuffix(name, ".gz") {
			data = gzipBytes(t, data)
		}
		p := writeTestFile(t, t.TempDir(), name, data)
		data = nil
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r, err := Open(p, FormatWARC, ReaderOptions{MaxRecordBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		docs := 0
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if re, ok := IsRecordError(err); ok {
				kinds = append(kinds, re.Kind)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Type == "response" && rec.Skip == "" {
				docs++
			}
		}
		r.Close()
		runtime.ReadMemStats(&after)
		if len(kinds) != 1 || kinds[0] != ErrRecordTooLarge || docs != 3 {
			t.Fatalf("%s: errors %v, %d responses", name, kinds, docs)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 6<<20 {
			t.Fatalf("%s: reading allocated %d MiB for a 12 MiB record over a 1 MiB limit", name, alloc>>20)
		}
	}
}

// FuzzWARC: any bytes give records, RecordErrors or EOF, never a panic or a
// loop, and every RecordError names the file.
func FuzzWARC(f *testing.F) {
	recs := genWARC(2)
	plain := concatWARC(recs, "1.0")
	f.Add(plain)
	f.Add(gzipBytes(f, plain))
	f.Add(plain[:len(plain)/2])
	f.Add([]byte("WARC/1.0\r\nContent-Length: 99999999999\r\n\r\nx"))
	f.Add([]byte("WARC/0.18 10 response u d <i> t\r\n\r\n0123456789"))
	f.Add(append(gzipBytes(f, recs[0].bytes("1.0")), 0x1f, 0x8b, 8, 0, 0, 0))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) { checkArbitraryWARC(t, filepath.Join(dir, "fuzz.warc"), data) })
}

// checkArbitraryWARC reads data as a WARC file: records, RecordErrors that
// name the file, then EOF; never a panic, a fatal error or an endless loop,
// and the reader's framing agrees with what it returned (see checkReader).
func checkArbitraryWARC(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	checkReader(t, p, FormatWARC, ReaderOptions{MaxRecordBytes: 1 << 16}, true)
}

// Deterministic random corruption of real-shaped inputs (flipped bytes,
// cuts, duplicated spans), plain and per-record gzip.
func TestWARCRandomCorruption(t *testing.T) {
	recs := genWARC(3)
	plain := concatWARC(recs, "1.0")
	var perRec []byte
	for _, r := range recs {
		perRec = append(perRec, gzipBytes(t, r.bytes("1.0"))...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	p := filepath.Join(t.TempDir(), "rand.warc")
	for i := 0; i < 150; i++ {
		src := plain
		if i%2 == 1 {
			src = perRec
		}
		data := append([]byte(nil), src...)
		switch i % 3 {
		case 0:
			for k := 0; k < 1+rng.IntN(8); k++ {
				data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			}
		case 1:
			data = data[:rng.IntN(len(data))]
		case 2:
			a := rng.IntN(len(data))
			b := a + rng.IntN(len(data)-a)
			data = append(data[:b:b], data[a:]...)
		}
		checkArbitraryWARC(t, p, data)
	}
}
