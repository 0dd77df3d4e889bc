package lineage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestFilterDocShard: the column-wise filter keeps exactly the other rows,
// in order and field for field, and counts their bytes as DocBytes does,
// whichever batches the removed rows fall in.
func TestFilterDocShard(t *testing.T) {
	for _, dropped := range []bool{false, true} {
		dir := t.TempDir()
		var docs []*shards.Document
		w := shards.NewDocWriter(dir, shards.DocWriterOptions{TargetBytes: 1 << 40, BatchRows: 5, Dropped: dropped, Manual: true})
		for i := 0; i < 23; i++ {
			d := &shards.Document{ID: fmt.Sprintf("c/%d", i), Source: "c", URL: fmt.Sprintf("https://x.example/%d", i),
				Lang: "en", LangScore: 0.5, Text: fmt.Sprintf("text %d %s", i, string(make([]byte, i))), Meta: `{"k":1}`}
			if i%3 == 0 {
				d.Quality, d.HasQuality = float64(i)/10, true
			}
			if dropped && i%2 == 0 {
				d.Drop = &shards.Drop{Reason: "dedup:exact", Value: "1", DupOf: "c/0"}
			}
			if err := w.Write(d); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, d)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, w.Shards()[0].Name)
		for _, tc := range []struct {
			name   string
			remove []int
		}{
			{"none", nil},
			{"scattered", []int{0, 4, 5, 11, 22}},
			{"whole batches at the end", []int{20, 21, 22, 15, 16, 17, 18, 19}},
			{"a whole middle batch", []int{5, 6, 7, 8, 9}},
			{"all", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}},
		} {
			rm := map[string]bool{}
			for _, i := range tc.remove {
				rm[docs[i].ID] = true
			}
			var want []*shards.Document
			var wantBytes int64
			for _, d := range docs {
				if !rm[d.ID] {
					want = append(want, d)
					wantBytes += shards.DocBytes(d)
				}
			}
			dst := filepath.Join(t.TempDir(), "out.arrow")
			info, removed, err := filterDocShard(src, dst, shards.ShardInfo{}, rm)
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("dropped=%v %s", dropped, tc.name)
			if removed != int64(len(tc.remove)) || info.Rows != int64(len(want)) || info.DataBytes != wantBytes {
				t.Fatalf("%s: removed %d rows %d data %d, want %d %d %d", what, removed, info.Rows, info.DataBytes, len(tc.remove), len(want), wantBytes)
			}
			_, statErr := os.Stat(dst)
			if removed == 0 || len(want) == 0 {
				if statErr == nil {
					t.Fatalf("%s: wrote a file", what)
				}
				continue
			}
			sum, n, err := shards.FileSHA256(dst)
			if err != nil || sum != info.SHA256 || n != info.Bytes {
				t.Fatalf("%s: info %+v, file %s %d %v", what, info, sum, n, err)
			}
			r, err := shards.OpenDocShard(dst)
			if err != nil {
				t.Fatal(err)
			}
			var got []*shards.Document
			for {
				d, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, d)
			}
			r.Close()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: got %d documents, want %d (first %+v vs %+v)", what, len(got), len(want), got[0], want[0])
			}
		}
	}
}
