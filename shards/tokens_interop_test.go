package shards

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/smelt-dev/smelt/internal/nodepkg"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// jsShard is what testdata/arrowjs/read.mjs prints for one file.
type jsShard struct {
	File    string `json:"file"`
	Rows    int    `json:"rows"`
	Batches int    `json:"batches"`
	Fields  []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Nullable bool   `json:"nullable"`
	} `json:"fields"`
	Metadata map[string]string          `json:"metadata"`
	Columns  map[string]json.RawMessage `json:"columns"`
}

// arrowJS prepares the apache-arrow JavaScript reader (installing its npm
// packages once into testdata/arrowjs/node_modules) and returns a function
// that reads shard files with it. It skips the test when node or npm is
// missing or the packages cannot be installed.
func arrowJS(t *testing.T) func(files ...string) []jsShard {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "arrowjs"))
	if err != nil {
		t.Fatal(err)
	}
	node, skip := nodepkg.Install(dir, "the Arrow JS interop check", "apache-arrow/package.json", "fzstd/package.json")
	if node == "" {
		t.Skip(skip)
	}
	return func(files ...string) []jsShard {
		t.Helper()
		ctx := t.Context() // no fixed limit: the test ends it, go test's -timeout bounds it
		cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "read.mjs")}, files...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node read.mjs: %v\n%s", err, stderr.String())
		}
		var res []jsShard
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<30)
		for sc.Scan() {
			var s jsShard
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatalf("read.mjs output: %v", err)
			}
			res = append(res, s)
		}
		if len(res) != len(files) {
			t.Fatalf("read.mjs printed %d results for %d files", len(res), len(files))
		}
		return res
	}
}

func jsColumn[T any](t *testing.T, s jsShard, name string) []T {
	t.Helper()
	raw, ok := s.Columns[name]
	if !ok {
		t.Fatalf("%s: Arrow JS sees no column %q", s.File, name)
	}
	var v []T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: column %q: %v", s.File, name, err)
	}
	return v
}

// interopDocs are documents with the awkward parts: multi-byte text,
// missing quality, empty fields, drop reasons.
func interopDocs(n int) []*Document {
	docs := make([]*Document, n)
	for i := range docs {
		d := &Document{
			ID:        fmt.Sprintf("interop/%05d", i),
			Source:    []string{"cc", "wiki", "books"}[i%3],
			URL:       fmt.Sprintf("https://example.org/%d?q=ü", i),
			Date:      "2024-05-06T07:08:09Z",
			Lang:      []string{"en", "ja", "de"}[i%3],
			LangScore: float64(i%97) / 97,
			Text:      strings.Repeat(fmt.Sprintf("Línea %d — 日本語のテキスト ✓ \"quoted\"\n", i), 1+i%17),
			Meta:      fmt.Sprintf(`{"i":%d}`, i),
		}
		if i%4 != 0 {
			d.Quality, d.HasQuality = float64(i%10)/10+0.05, true
		}
		if i%7 == 0 {
			d.URL, d.Meta = "", ""
		}
		docs[i] = d
	}
	return docs
}

// TestArrowJSReadsDocumentShards writes document shards (kept and dropped)
// with NewDocWriter and checks that apache-arrow JS reads every value back.
func TestArrowJSReadsDocumentShards(t *testing.T) {
	read := arrowJS(t)
	docs := interopDocs(300)
	for _, dropped := range []bool{false, true} {
		dir := t.TempDir()
		w := NewDocWriter(dir, DocWriterOptions{TargetBytes: 40 << 10, BatchRows: 50, Dropped: dropped})
		for i, d := range docs {
			if dropped {
				dd := *d
				dd.Drop = &Drop{Reason: "gopher/too_few_words", Value: fmt.Sprint(i), DupOf: fmt.Sprintf("interop/%05d", i/2)}
				d = &dd
			}
			if err := w.Write(d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if len(w.Shards()) < 2 {
			t.Fatalf("want several shards, got %d", len(w.Shards()))
		}
		var files []string
		for _, s := range w.Shards() {
			files = append(files, filepath.Join(dir, s.Name))
		}
		res := read(files...)
		k := 0
		for si, s := range res {
			if int64(s.Rows) != w.Shards()[si].Rows {
				t.Fatalf("%s: Arrow JS reads %d rows, manifest has %d", s.File, s.Rows, w.Shards()[si].Rows)
			}
			if s.Batches < 1 {
				t.Fatalf("%s: no record batches", s.File)
			}
			want := DocSchema(dropped)
			if len(s.Fields) != want.NumFields() {
				t.Fatalf("%s: %d fields, want %d", s.File, len(s.Fields), want.NumFields())
			}
			for i, f := range s.Fields {
				if f.Name != want.Field(i).Name || f.Nullable != want.Field(i).Nullable {
					t.Fatalf("%s: field %d is %+v, want %s", s.File, i, f, want.Field(i))
				}
			}
			if got := s.Metadata["smelt.format"]; got != "documents/v1" {
				t.Fatalf("%s: smelt.format metadata %q", s.File, got)
			}
			ids := jsColumn[string](t, s, ColID)
			srcs := jsColumn[string](t, s, ColSource)
			urls := jsColumn[string](t, s, ColURL)
			texts := jsColumn[string](t, s, ColText)
			metas := jsColumn[string](t, s, ColMeta)
			langs := jsColumn[string](t, s, ColLang)
			scores := jsColumn[float64](t, s, ColLangScore)
			quals := jsColumn[*float64](t, s, ColQuality)
			var reasons, values, dups []string
			if dropped {
				reasons = jsColumn[string](t, s, ColReason)
				values = jsColumn[string](t, s, ColRuleValue)
				dups = jsColumn[string](t, s, ColDupOf)
			}
			for i := 0; i < s.Rows; i++ {
				d := docs[k]
				if ids[i] != d.ID || srcs[i] != d.Source || urls[i] != d.URL || texts[i] != d.Text ||
					metas[i] != d.Meta || langs[i] != d.Lang || scores[i] != d.LangScore {
					t.Fatalf("%s row %d: Arrow JS reads id=%q source=%q url=%q lang=%q score=%v, want %+v",
						s.File, i, ids[i], srcs[i], urls[i], langs[i], scores[i], d)
				}
				if (quals[i] != nil) != d.HasQuality || (d.HasQuality && *quals[i] != d.Quality) {
					t.Fatalf("%s row %d: quality %v, want %v (has=%v)", s.File, i, quals[i], d.Quality, d.HasQuality)
				}
				if dropped && (reasons[i] != "gopher/too_few_words" || values[i] != fmt.Sprint(k) || dups[i] != fmt.Sprintf("interop/%05d", k/2)) {
					t.Fatalf("%s row %d: drop %q %q %q", s.File, i, reasons[i], values[i], dups[i])
				}
				k++
			}
		}
		if k != len(docs) {
			t.Fatalf("Arrow JS read %d documents, wrote %d", k, len(docs))
		}
	}
}

// TestArrowJSReadsTokenShards writes token shards of both widths and checks
// that apache-arrow JS reads the same ids, sources and tokens.
func TestArrowJSReadsTokenShards(t *testing.T) {
	read := arrowJS(t)
	for _, c := range []struct {
		vocab int
		comp  string
	}{{50257, TokenCompressionNone}, {100277, TokenCompressionNone}, {50257, TokenCompressionZstd}, {100277, TokenCompressionZstd}} {
		vocab := c.vocab
		t.Run(fmt.Sprint(vocab, c.comp), func(t *testing.T) {
			dir := t.TempDir()
			tok := TokenizerInfo{Name: "test", RanksHash: "abc", VocabSize: vocab, EOT: uint32(vocab - 1)}
			w, err := NewTokenWriter(dir, TokenWriterOptions{Tokenizer: tok, TargetBytes: 2 << 10, BatchRows: 16, Compression: c.comp})
			if err != nil {
				t.Fatal(err)
			}
			var want [][]uint32
			for i := 0; i < 120; i++ {
				toks := make([]uint32, i%37)
				for j := range toks {
					toks[j] = uint32((i*7919 + j*104729) % (vocab - 1))
				}
				toks = append(toks, tok.EOT)
				want = append(want, toks)
				if err := w.Write(fmt.Sprintf("doc/%d", i), "src", toks); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, s := range w.Shards() {
				files = append(files, filepath.Join(dir, s.Name))
			}
			if len(files) < 2 {
				t.Fatalf("want several shards, got %d", len(files))
			}
			wantType := "List<Uint16>"
			if vocab > 1<<16 {
				wantType = "List<Uint32>"
			}
			k := 0
			for si, s := range read(files...) {
				info := w.Shards()[si]
				if int64(s.Rows) != info.Rows {
					t.Fatalf("%s: %d rows, want %d", s.File, s.Rows, info.Rows)
				}
				if s.Fields[2].Name != ColTokens || s.Fields[2].Type != wantType {
					t.Fatalf("%s: tokens field %+v, want %s", s.File, s.Fields[2], wantType)
				}
				if s.Metadata["smelt.format"] != "tokens/v1" || s.Metadata["smelt.vocab_size"] != fmt.Sprint(vocab) {
					t.Fatalf("%s: metadata %v", s.File, s.Metadata)
				}
				ids := jsColumn[string](t, s, ColID)
				toks := jsColumn[[]uint32](t, s, ColTokens)
				ns := jsColumn[int64](t, s, ColNTokens)
				var sum int64
				for i := range ids {
					if ids[i] != fmt.Sprintf("doc/%d", k) || ns[i] != int64(len(want[k])) || fmt.Sprint(toks[i]) != fmt.Sprint(want[k]) {
						t.Fatalf("%s row %d: Arrow JS reads %s n=%d %v, want doc/%d %v", s.File, i, ids[i], ns[i], toks[i], k, want[k])
					}
					sum += ns[i]
					k++
				}
				if sum != info.Tokens {
					t.Fatalf("%s: %d tokens, manifest entry says %d", s.File, sum, info.Tokens)
				}
			}
			if k != len(want) {
				t.Fatalf("read %d rows, wrote %d", k, len(want))
			}
		})
	}
}
