package lineage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSorterLoad: entries added in random order, with repeated keys, come
// out of the index file sorted, each key once with the value added last,
// whether they fit one run or are spread over many; each is found by
// itself and by a prefix.
func TestSorterLoad(t *testing.T) {
	for _, limit := range []int{0, 512} {
		t.Run(fmt.Sprint("limit", limit), func(t *testing.T) {
			dir := t.TempDir()
			s := &sorter{dir: dir, limit: limit}
			rng := rand.New(rand.NewPCG(3, uint64(limit)))
			want := map[string]string{}
			for i := 0; i < 5000; i++ {
				k := fmt.Sprintf("k%04d", rng.IntN(3000))
				v := fmt.Sprint("v", i, strings.Repeat("x", rng.IntN(40)))
				if i%7 == 0 {
					v = "" // empty values, as the URL and host keys have
				}
				want[k] = v
				if err := s.add([]byte(k), []byte(v)); err != nil {
					t.Fatal(err)
				}
			}
			if limit > 0 && len(s.runs) < 10 {
				t.Fatalf("%d runs: the test means to merge many", len(s.runs))
			}
			var keys []string
			got := map[string]string{}
			if err := loadIndex(filepath.Join(dir, "ix"), s, "test"); err != nil {
				t.Fatal(err)
			}
			ix, err := openIndexFile(filepath.Join(dir, "ix", IndexFile))
			if err != nil {
				t.Fatal(err)
			}
			defer ix.close()
			if len(ix.blocks) < 2 {
				t.Fatalf("%d blocks: the test means to read across blocks", len(ix.blocks))
			}
			var order []string
			err = ix.scan(nil, func(k, v []byte) bool {
				keys = append(keys, string(k))
				got[string(k)] = string(v)
				order = append(order, string(k))
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			// Every key by itself, and a prefix scan.
			for k, v := range want {
				g, ok, err := ix.get([]byte(k))
				if err != nil || !ok || string(g) != v {
					t.Fatalf("get(%s) = %q, %v, %v; want %q", k, g, ok, err, v)
				}
			}
			if _, ok, _ := ix.get([]byte("k00000")); ok {
				t.Fatal("get found a key that is not there")
			}
			n := 0
			if err := ix.scan([]byte("k12"), func(k, _ []byte) bool { n++; return true }); err != nil {
				t.Fatal(err)
			}
			wantN := 0
			for k := range want {
				if strings.HasPrefix(k, "k12") {
					wantN++
				}
			}
			if n != wantN || n == 0 {
				t.Fatalf("prefix k12: %d keys, want %d", n, wantN)
			}
			for i := range order {
				if i > 0 && order[i-1] >= order[i] {
					t.Fatalf("keys out of order: %q then %q", order[i-1], order[i])
				}
				if keys[i] != order[i] {
					t.Fatalf("key %d loaded as %q, read back as %q", i, keys[i], order[i])
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d keys read back, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s = %q, want the last value added, %q", k, got[k], v)
				}
			}
		})
	}
}

// TestIndexFileRefusesDamage: a damaged or crafted index file is refused
// with an error naming it, before what its footer asks for is allocated.
func TestIndexFileRefusesDamage(t *testing.T) {
	dir := t.TempDir()
	s := &sorter{dir: dir}
	for i := 0; i < 3000; i++ {
		if err := s.add([]byte(fmt.Sprintf("k%05d", i)), []byte(strings.Repeat("v", 40))); err != nil {
			t.Fatal(err)
		}
	}
	if err := loadIndex(filepath.Join(dir, "ix"), s, "test"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "ix", IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	foot := len(good) - footerLen
	huge := func(b []byte) []byte {
		binary.LittleEndian.PutUint64(b[foot+8:], 1<<62) // an index of 4 EiB
		return b
	}
	cases := map[string]func([]byte) []byte{
		"truncated":    func(b []byte) []byte { return b[:len(b)-7] },
		"empty":        func(b []byte) []byte { return nil },
		"bad magic":    func(b []byte) []byte { b[0] ^= 1; return b },
		"huge index":   huge,
		"index offset": func(b []byte) []byte { binary.LittleEndian.PutUint64(b[foot:], 3); return b },
		"block count":  func(b []byte) []byte { binary.LittleEndian.PutUint64(b[foot+16:], 1<<40); return b },
		"block entry":  func(b []byte) []byte { idx := binary.LittleEndian.Uint64(b[foot:]); b[idx+8] ^= 0x40; return b },
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), IndexFile)
			if err := os.WriteFile(path, damage(bytes.Clone(good)), 0o644); err != nil {
				t.Fatal(err)
			}
			ix, err := openIndexFile(path)
			if err == nil {
				ix.close()
				t.Fatal("a damaged index file opened")
			}
			if !strings.Contains(err.Error(), path) || !errors.Is(err, errIndexFormat) {
				t.Fatalf("error %q does not name the file as not an index", err)
			}
		})
	}
	// A block whose bytes are damaged opens (the index is intact) and
	// fails the lookup that reads it, naming the file and offset.
	b := bytes.Clone(good)
	b[len(indexMagic)+20] ^= 0xff
	path := filepath.Join(t.TempDir(), IndexFile)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ix, err := openIndexFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.close()
	if _, _, err := ix.get([]byte("k00001")); err == nil || !strings.Contains(err.Error(), "offset") {
		t.Fatalf("a damaged block read as %v", err)
	}
}
