package export

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/tokenize"
)

// parseMegatron reads NAME.idx and NAME.bin by the layout documented in
// binary.go and returns the documents' tokens.
func parseMegatron(t *testing.T, dir, name string) [][]uint32 {
	t.Helper()
	idx, err := os.ReadFile(filepath.Join(dir, name+".idx"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	if string(idx[:9]) != "MMIDIDX\x00\x00" {
		t.Fatalf("%s.idx: magic %q", name, idx[:9])
	}
	le := binary.LittleEndian
	if v := le.Uint64(idx[9:]); v != 1 {
		t.Fatalf("version %d", v)
	}
	code := idx[17]
	n := int(le.Uint64(idx[18:]))
	nd := int(le.Uint64(idx[26:]))
	if nd != n+1 {
		t.Fatalf("document count %d for %d sequences", nd, n)
	}
	width := map[byte]int{8: 2, 4: 4}[code]
	if width == 0 {
		t.Fatalf("dtype code %d", code)
	}
	off := 34
	if len(idx) != off+4*n+8*n+8*nd {
		t.Fatalf("%s.idx: %d bytes, want %d", name, len(idx), off+4*n+8*n+8*nd)
	}
	var docs [][]uint32
	var ptr int64
	for i := 0; i < n; i++ {
		size := int(int32(le.Uint32(idx[off+4*i:])))
		p := int64(le.Uint64(idx[off+4*n+8*i:]))
		if p != ptr {
			t.Fatalf("sequence %d: pointer %d, want %d", i, p, ptr)
		}
		if di := le.Uint64(idx[off+12*n+8*i:]); int(di) != i {
			t.Fatalf("document index %d is %d", i, di)
		}
		toks := make([]uint32, size)
		for j := range toks {
			if width == 2 {
				toks[j] = uint32(le.Uint16(bin[p+int64(2*j):]))
			} else {
				toks[j] = le.Uint32(bin[p+int64(4*j):])
			}
		}
		ptr += int64(size * width)
		docs = append(docs, toks)
	}
	if ptr != int64(len(bin)) {
		t.Fatalf("%s.bin: %d bytes, the index covers %d", name, len(bin), ptr)
	}
	return docs
}

func TestMegatronHoldsEveryDocument(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	c := realCorpus(t)
	out := t.TempDir()
	p := export(t, c.tokenInputs(t), out, Options{Format: FormatMegatron})
	var parts []string
	var all int64
	for _, s := range c.sources {
		all += mustManifest(t, c.tokens[s]).Totals.Tokens
	}
	for _, s := range c.sources {
		want := readTokenDocs(t, c.tokens[s])
		got := parseMegatron(t, out, s)
		if len(got) != len(want) {
			t.Fatalf("%s: %d documents, shards hold %d", s, len(got), len(want))
		}
		for i := range want {
			if fmt.Sprint(got[i]) != fmt.Sprint(want[i].tokens) {
				t.Fatalf("%s document %d (%s): tokens differ", s, i, want[i].id)
			}
			if want[i].tokens[len(want[i].tokens)-1] != 50256 {
				t.Fatalf("%s document %d does not end with end-of-text", s, i)
			}
		}
		w := float64(mustManifest(t, c.tokens[s]).Totals.Tokens) / float64(all)
		parts = append(parts, fmt.Sprint(w), s)
	}
	blend, err := os.ReadFile(filepath.Join(out, DataPathFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(blend)); len(got) != len(parts) {
		t.Fatalf("blend %q", blend)
	} else {
		for i := 0; i < len(got); i += 2 {
			var g, w float64
			fmt.Sscan(got[i], &g)
			fmt.Sscan(parts[i], &w)
			if got[i+1] != parts[i+1] || g-w > 1e-9 || w-g > 1e-9 {
				t.Fatalf("blend %q, want weights by tokens %v", blend, parts)
			}
		}
	}
	if p.DataPath != strings.TrimSpace(string(blend)) || p.TokenDType != "uint16" {
		t.Fatalf("provenance data path %q dtype %s", p.DataPath, p.TokenDType)
	}
	checkProvenance(t, out, p, c.tokenInputs(t))
}

// TestMegatronBlendFromMix checks that a mix file's names and weights make
// the datasets and the blend string.
func TestMegatronBlendFromMix(t *testing.T) {
	c := realCorpus(t)
	if len(c.sources) < 2 {
		t.Skip("needs two sources (../shared/data)")
	}
	dir := t.TempDir()
	mix := filepath.Join(dir, "mix.yaml")
	y := fmt.Sprintf("sources:\n  - {name: webpages, path: %s, weight: 3}\n  - {name: crawl, path: %s, weight: 1}\n", c.tokens["web"], c.tokens["cc"])
	if err := os.WriteFile(mix, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	ins, err := ResolveInputs([]string{mix})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	p := export(t, ins, out, Options{Format: FormatMegatron})
	if p.DataPath != "0.75 webpages 0.25 crawl" {
		t.Fatalf("blend %q", p.DataPath)
	}
	if got := parseMegatron(t, out, "crawl"); len(got) != int(mustManifest(t, c.tokens["cc"]).Totals.Rows) {
		t.Fatalf("crawl: %d documents", len(got))
	}
}

// TestMegatronMaterialisedMix checks the "mix" dataset against smelt's
// loader, sequence by sequence.
func TestMegatronMaterialisedMix(t *testing.T) {
	c := realCorpus(t)
	out := t.TempDir()
	ins := c.tokenInputs(t)
	opt := Options{Format: FormatMegatron, MixTokens: 100_000, SeqLen: 255, Seed: 7}
	export(t, ins, out, opt)
	got := parseMegatron(t, out, mixName)
	if len(got) != 100_000/256 {
		t.Fatalf("%d sequences, want %d", len(got), 100_000/256)
	}
	e := &binExporter{inputs: ins, opt: opt}
	mix, err := e.loadMix()
	if err != nil {
		t.Fatal(err)
	}
	l, err := shards.NewLoader(mix, shards.LoaderOptions{SeqLen: 255, BatchSize: 1, Seed: 7, ValFraction: DefaultValFraction})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]uint32, 256)
	for i, seq := range got {
		if err := l.Next(buf); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(seq) != fmt.Sprint(buf) {
			t.Fatalf("sequence %d differs from the loader's", i)
		}
	}
}

func mustManifest(t testing.TB, dir string) *shards.Manifest {
	t.Helper()
	m, err := shards.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkProvenance checks export.json against the files and the inputs.
func checkProvenance(t *testing.T, out string, p *Provenance, ins []*Input) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, SidecarName))
	if err != nil {
		t.Fatal(err)
	}
	var q Provenance
	if err := json.Unmarshal(data, &q); err != nil {
		t.Fatal(err)
	}
	if q.Fingerprint != p.Fingerprint || len(q.Inputs) != len(ins) {
		t.Fatalf("sidecar %+v", q)
	}
	for i, in := range ins {
		sum, _, _ := shards.FileSHA256(filepath.Join(in.Dir, shards.ManifestName))
		if q.Inputs[i].ManifestSHA256 != sum || len(q.Inputs[i].Shards) != len(in.Manifest.Shards) {
			t.Fatalf("input %d provenance %+v", i, q.Inputs[i])
		}
	}
	for _, f := range q.Files {
		data, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) != f.Bytes {
			t.Fatalf("%s: sidecar says %d bytes, file has %d", f.Name, f.Bytes, len(data))
		}
		want, sum := f.SHA256, sha256Hex(data)
		if f.TokensSHA256 != "" {
			// llm.c: the tokens after the header.
			want, sum = f.TokensSHA256, sha256Hex(data[4*llmcHeaderInts:])
			if f.SHA256 != "" || !strings.HasSuffix(f.Name, ".bin") {
				t.Fatalf("%s: sidecar %+v", f.Name, f)
			}
		}
		if sum != want || want == "" {
			t.Fatalf("%s: sidecar says sha256 %q, file has %s", f.Name, want, sum)
		}
	}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || e.Name() == CheckpointName {
			t.Fatalf("left behind: %s", e.Name())
		}
	}
}

// parseFlat reads nanoGPT (header 0) and llm.c (header 1024) token files.
func parseFlat(t *testing.T, path string, header int) []uint32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	width := 2
	if header > 0 {
		magic, version, n := le.Uint32(data), le.Uint32(data[4:]), int(le.Uint32(data[8:]))
		switch {
		case magic == 20240520 && version == 1:
		case magic == 20240801 && version == 7:
			width = 4
		default:
			t.Fatalf("%s: magic %d version %d", path, magic, version)
		}
		for i := 3; i < 256; i++ {
			if le.Uint32(data[4*i:]) != 0 {
				t.Fatalf("%s: header int %d is not zero", path, i)
			}
		}
		if len(data) != header+n*width {
			t.Fatalf("%s: %d bytes for %d tokens", path, len(data), n)
		}
	}
	body := data[header:]
	out := make([]uint32, len(body)/width)
	for i := range out {
		if width == 2 {
			out[i] = uint32(le.Uint16(body[2*i:]))
		} else {
			out[i] = le.Uint32(body[4*i:])
		}
	}
	return out
}

// TestNanoGPTAndLLMCSplit checks train.bin and val.bin of both formats
// against the shards, split by the loader's held-out rule.
func TestNanoGPTAndLLMCSplit(t *testing.T) {
	c := realCorpus(t)
	var dirs []string
	for _, s := range c.sources {
		dirs = append(dirs, c.tokens[s])
	}
	docs := readTokenDocs(t, dirs...)
	const frac = 0.2
	train, val := loaderSplit(t, dirs, frac, DefaultSeqLen)
	if len(val) == 0 || len(train) == 0 {
		t.Fatalf("split %d / %d tokens", len(train), len(val))
	}
	for _, f := range []Format{FormatNanoGPT, FormatLLMC} {
		out := t.TempDir()
		p := export(t, c.tokenInputs(t), out, Options{Format: f, ValFraction: frac})
		header := 0
		if f == FormatLLMC {
			header = 1024
		}
		if got := parseFlat(t, filepath.Join(out, "train.bin"), header); fmt.Sprint(got) != fmt.Sprint(train) {
			t.Fatalf("%s train.bin: %d tokens differ from the shards' %d", f, len(got), len(train))
		}
		if got := parseFlat(t, filepath.Join(out, "val.bin"), header); fmt.Sprint(got) != fmt.Sprint(val) {
			t.Fatalf("%s val.bin: %d tokens differ from the shards' %d", f, len(got), len(val))
		}
		if p.Tokens != int64(len(train)+len(val)) || p.Docs != int64(len(docs)) {
			t.Fatalf("%s: provenance %d docs %d tokens", f, p.Docs, p.Tokens)
		}
		checkProvenance(t, out, p, c.tokenInputs(t))
	}
}

// wideTokens tokenizes the corpus's first document directory with
// cl100k_base (100,277 ids).
func wideTokens(t *testing.T, c *corpus) string {
	t.Helper()
	tok, err := tokenize.GetOrLoad("cl100k_base")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := shards.Tokenize(context.Background(), shards.TokenizeConfig{Inputs: []string{c.docs[c.sources[0]]}, Out: dir, Encoder: tok, Workers: 2, TargetBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestVocabularyPast65536 checks the refusal of nanoGPT and the wide
// layouts of Megatron (int32) and llm.c (uint32, magic 20240801 v7).
func TestVocabularyPast65536(t *testing.T) {
	c := realCorpus(t)
	dir := wideTokens(t, c)
	in, err := OpenInput("wide", dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), []*Input{in}, t.TempDir(), Options{Format: FormatNanoGPT})
	if err == nil || !strings.Contains(err.Error(), "100277") || !strings.Contains(err.Error(), "uint16") {
		t.Fatalf("nanogpt with cl100k_base: %v", err)
	}
	want := readTokenDocs(t, dir)
	out := t.TempDir()
	if p := export(t, []*Input{in}, out, Options{Format: FormatMegatron}); p.TokenDType != "int32" {
		t.Fatalf("dtype %s", p.TokenDType)
	}
	got := parseMegatron(t, out, "wide")
	var flat []uint32
	big := false
	for i, d := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(d.tokens) {
			t.Fatalf("document %d differs", i)
		}
		for _, x := range d.tokens {
			big = big || x >= 1<<16
		}
		flat = append(flat, d.tokens...)
	}
	if !big {
		t.Fatal("no id past 65535 in the test data")
	}
	out = t.TempDir()
	export(t, []*Input{in}, out, Options{Format: FormatLLMC, ValFraction: 0.5})
	tr, va := parseFlat(t, filepath.Join(out, "train.bin"), 1024), parseFlat(t, filepath.Join(out, "val.bin"), 1024)
	if len(tr)+len(va) != len(flat) {
		t.Fatalf("llmc: %d + %d tokens, want %d", len(tr), len(va), len(flat))
	}
}

// TestDeterministic exports every format twice and compares the bytes.
func TestDeterministic(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	c := realCorpus(t)
	for _, f := range Formats {
		t.Run(string(f), func(t *testing.T) {
			ins := c.tokenInputs(t)
			if f == FormatJSONL {
				ins = c.docInputs(t)
			}
			opt := Options{Format: f}
			if f == FormatMegatron {
				opt.MixTokens = 20_000
			}
			a, b := t.TempDir(), t.TempDir()
			export(t, ins, a, opt)
			export(t, ins, b, opt)
			testutil.SameTree(t, a, b)
		})
	}
}

func TestRefusals(t *testing.T) {
	c := realCorpus(t)
	tokIns, docIns := c.tokenInputs(t), c.docInputs(t)
	cases := []struct {
		name string
		ins  []*Input
		opt  Options
		want string
	}{
		{"documents to megatron", docIns, Options{Format: FormatMegatron}, "run smelt tokenize first"},
		{"tokens to jsonl", tokIns, Options{Format: FormatJSONL}, "jsonl exports document shards"},
		{"mixed kinds", []*Input{tokIns[0], docIns[0]}, Options{Format: FormatParquet}, "one kind at a time"},
		{"same name twice", []*Input{tokIns[0], tokIns[0]}, Options{Format: FormatMegatron}, "would both write"},
		{"bad format", tokIns, Options{Format: "hdf5"}, "unknown format"},
		{"mix for nanogpt", tokIns, Options{Format: FormatNanoGPT, MixTokens: 10}, "megatron only"},
		{"gzip for parquet", docIns, Options{Format: FormatParquet, Compression: "gzip"}, "want zstd, snappy or none"},
		{"compression for nanogpt", tokIns, Options{Format: FormatNanoGPT, Compression: "zstd"}, "jsonl and parquet, not nanogpt"},
	}
	for _, tc := range cases {
		_, err := Run(context.Background(), tc.ins, t.TempDir(), tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	// A directory with other files, and a finished export of something else.
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "notes.txt"), []byte("mine"), 0o644)
	if _, err := Run(context.Background(), tokIns, busy, Options{Format: FormatNanoGPT}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty output: %v", err)
	}
	// A second writer into one output is refused by shards.LockOutput,
	// which every stage shares; shards/lock_test.go tests it with two
	// processes (within one process the lock nests by design).
	out := t.TempDir()
	first := export(t, tokIns, out, Options{Format: FormatNanoGPT})
	again := export(t, tokIns, out, Options{Format: FormatNanoGPT})
	if again.Fingerprint != first.Fingerprint {
		t.Error("a finished export run again is not recognised")
	}
	if _, err := Run(context.Background(), tokIns, out, Options{Format: FormatNanoGPT, ValFraction: 0.5}); err == nil || !strings.Contains(err.Error(), "other inputs or options") {
		t.Errorf("other options into a finished export: %v", err)
	}
}

// TestCorruptShard checks that a shard that does not match its manifest
// is an error naming the file.
func TestCorruptShard(t *testing.T) {
	c := realCorpus(t)
	src := c.tokens[c.sources[0]]
	dir := t.TempDir()
	for name, data := range testutil.TreeFiles(t, src) {
		os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	m := mustManifest(t, dir)
	victim := filepath.Join(dir, m.Shards[len(m.Shards)/2].Name)
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 0xff
	os.WriteFile(victim, data, 0o644)
	in, err := OpenInput("x", dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), []*Input{in}, t.TempDir(), Options{Format: FormatMegatron})
	if err == nil || !strings.Contains(err.Error(), victim) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("corrupt shard: %v", err)
	}
}
