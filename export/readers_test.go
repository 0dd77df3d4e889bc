package export

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
)

// nodeReaders prepares testdata/node (nodejs-polars and DuckDB, installed
// once with npm ci into its git-ignored node_modules) and returns a
// function that runs readers.mjs. It skips the test when node or npm is
// missing or the packages cannot be installed.
func nodeReaders(t testing.TB) func(args ...string) []map[string]any {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Node.js readers")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "node"))
	if err != nil {
		t.Fatal(err)
	}
	node := testutil.NodePackages(t, dir, "the Polars and DuckDB checks", "nodejs-polars", "nodejs-polars-linux-x64-gnu", "@duckdb/node-api")
	return func(args ...string) []map[string]any {
		t.Helper()
		ctx := testutil.Context(t)
		cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(dir, "readers.mjs")}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("node readers.mjs %s: %v\n%s", args[0], err, stderr.String())
		}
		var res []map[string]any
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<26)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("readers.mjs output %q: %v", sc.Text(), err)
			}
			res = append(res, m)
		}
		return res
	}
}

func shardFiles(dir string, m *shards.Manifest) []string {
	var out []string
	for _, s := range m.Shards {
		out = append(out, filepath.Join(dir, s.Name))
	}
	return out
}

func num(t testing.TB, m map[string]any, k string) int64 {
	t.Helper()
	v, ok := m[k].(float64)
	if !ok {
		t.Fatalf("%v: no number %q", m, k)
	}
	return int64(v)
}

// TestPolarsReadsShardsAndParquet has Polars open smelt's own document and
// token shards (Arrow IPC with zstd) and the Parquet exports of both, and
// checks rows, token counts and token-id sums against smelt's.
func TestPolarsReadsShardsAndParquet(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	read := nodeReaders(t)
	c := realCorpus(t)
	for _, s := range c.sources {
		dm, tm := mustManifest(t, c.docs[s]), mustManifest(t, c.tokens[s])
		docs := readDocs(t, c.docs[s])
		toks := readTokenDocs(t, c.tokens[s])
		var textBytes, tokSum, tokN int64
		for _, d := range docs {
			textBytes += int64(len(d.Text))
		}
		for _, d := range toks {
			for _, x := range d.tokens {
				tokSum += int64(x)
			}
			tokN += int64(len(d.tokens))
		}
		wsum := weightedSum(toks)
		pd, pt := t.TempDir(), t.TempDir()
		export(t, c.docInputs(t)[indexOf(c.sources, s):][:1], pd, Options{Format: FormatParquet, RowGroupBytes: 64 << 10})
		export(t, c.tokenInputs(t)[indexOf(c.sources, s):][:1], pt, Options{Format: FormatParquet, RowGroupBytes: 64 << 10})
		for _, job := range []struct {
			what   string
			files  []string
			tokens bool
		}{
			{"document shards", shardFiles(c.docs[s], dm), false},
			{"token shards", shardFiles(c.tokens[s], tm), true},
			{"parquet documents", globbed(t, pd, "*.parquet"), false},
			{"parquet tokens", globbed(t, pt, "*.parquet"), true},
		} {
			var rows, n, sum, tb int64
			ws := new(big.Int)
			for _, r := range read(append([]string{"polars"}, job.files...)...) {
				rows += num(t, r, "rows")
				if job.tokens {
					n += num(t, r, "token_count")
					sum += num(t, r, "token_sum")
					ws.Add(ws, bigNum(t, r, "token_wsum"))
				} else {
					tb += num(t, r, "text_bytes")
				}
			}
			if job.tokens && ws.Cmp(wsum) != 0 {
				t.Errorf("%s %s: Polars reads ids whose position-weighted sum is %v, smelt's is %v (ids out of order)", s, job.what, ws, wsum)
			}
			if rows != dm.Totals.Rows || (job.tokens && (n != tokN || sum != tokSum || n != tm.Totals.Tokens)) || (!job.tokens && tb != textBytes) {
				t.Errorf("%s %s: Polars reads %d rows, %d tokens summing to %d, %d text bytes; smelt has %d rows, %d tokens summing to %d, %d text bytes",
					s, job.what, rows, n, sum, tb, dm.Totals.Rows, tokN, tokSum, textBytes)
			}
		}
	}
}

// weightedSum is the sum over documents of each id times its 1-based
// position in its document: equal sums mean the same ids in the same
// places (as far as a checksum tells).
func weightedSum(docs []shardDoc) *big.Int {
	var lo, hi uint64 // 128-bit sum
	for _, d := range docs {
		for i, x := range d.tokens {
			p := uint64(x) * uint64(i+1)
			var c uint64
			lo, c = bits.Add64(lo, p, 0)
			hi += c
		}
	}
	s := new(big.Int).SetUint64(hi)
	s.Lsh(s, 64)
	return s.Or(s, new(big.Int).SetUint64(lo))
}

// bigNum is the decimal string field k of a reader's JSON line.
func bigNum(t *testing.T, r map[string]any, k string) *big.Int {
	t.Helper()
	s, _ := r[k].(string)
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("reader gave %s = %v, want a decimal string: %v", k, r[k], r)
	}
	return n
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func globbed(t *testing.T, dir, pat string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pat))
	if err != nil || len(m) == 0 {
		t.Fatalf("no %s in %s", pat, dir)
	}
	return m
}

// TestDuckDBQueriesParquet queries the Parquet export of every source at
// once with DuckDB: documents (and tokens) per source must equal the
// per-source counts smelt stats shows (the manifests' sources).
func TestDuckDBQueriesParquet(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	read := nodeReaders(t)
	c := realCorpus(t)
	for _, kind := range []string{"documents", "tokens"} {
		ins, dirs := c.docInputs(t), c.docs
		if kind == "tokens" {
			ins, dirs = c.tokenInputs(t), c.tokens
		}
		out := t.TempDir()
		export(t, ins, out, Options{Format: FormatParquet})
		want := map[string]shards.Totals{}
		wsum := map[string]*big.Int{}
		for _, s := range c.sources {
			for src, tot := range mustManifest(t, dirs[s]).Sources {
				w := want[src]
				w.Rows += tot.Rows
				w.Tokens += tot.Tokens
				want[src] = w
			}
			if kind == "tokens" {
				for _, d := range readTokenDocs(t, dirs[s]) {
					if wsum[d.source] == nil {
						wsum[d.source] = new(big.Int)
					}
					wsum[d.source].Add(wsum[d.source], weightedSum([]shardDoc{d}))
				}
			}
		}
		got := read("duckdb", filepath.Join(out, "*.parquet"))
		if len(got) != len(want) {
			t.Fatalf("%s: DuckDB sees %d sources, smelt stats %d: %v", kind, len(got), len(want), got)
		}
		for _, r := range got {
			src, _ := r["source"].(string)
			if w := want[src]; num(t, r, "docs") != w.Rows || num(t, r, "tokens") != w.Tokens {
				t.Errorf("%s: source %s: DuckDB counts %v, smelt stats %d documents %d tokens", kind, src, r, w.Rows, w.Tokens)
			}
			if kind == "tokens" && bigNum(t, r, "wsum").Cmp(wsum[src]) != 0 {
				t.Errorf("tokens: source %s: DuckDB's position-weighted id sum %v, smelt's %v (ids out of order)", src, r["wsum"], wsum[src])
			}
		}
	}
}

// numpyReader is a reader of the three binary formats written from their
// published descriptions (not copied from the projects): it memory-maps
// the files and writes every token, in order, as little-endian uint32.
const numpyReader = `
import sys
import numpy as np

def megatron(prefix):
    # Megatron-LM indexed dataset: .idx = b"MMIDIDX\x00\x00", <Q version,
    # <B dtype code, <Q sequence count, <Q document count, then int32
    # sizes, int64 byte pointers, int64 document index; .bin = tokens.
    idx = np.memmap(prefix + ".idx", dtype=np.uint8, mode="r")
    assert bytes(idx[:9]) == b"MMIDIDX\x00\x00", "magic"
    version = int(idx[9:17].view("<u8")[0])
    assert version == 1, version
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32, 8: np.uint16}[int(idx[17])]
    nseq = int(idx[18:26].view("<u8")[0])
    ndoc = int(idx[26:34].view("<u8")[0])
    off = 34
    sizes = np.frombuffer(idx, dtype="<i4", count=nseq, offset=off)
    ptrs = np.frombuffer(idx, dtype="<i8", count=nseq, offset=off + sizes.nbytes)
    docidx = np.frombuffer(idx, dtype="<i8", count=ndoc, offset=off + sizes.nbytes + ptrs.nbytes)
    assert docidx[0] == 0 and docidx[-1] == nseq
    bin_ = np.memmap(prefix + ".bin", dtype=np.uint8, mode="r")
    width = np.dtype(dtype).itemsize
    out = []
    for d in range(ndoc - 1):
        for s in range(docidx[d], docidx[d + 1]):
            out.append(np.frombuffer(bin_, dtype=dtype, count=int(sizes[s]), offset=int(ptrs[s])))
    assert int(ptrs[-1]) + int(sizes[-1]) * width == len(bin_)
    return np.concatenate(out) if out else np.zeros(0, dtype=dtype)

def nanogpt(path):
    # nanoGPT: raw uint16 token ids, nothing else.
    return np.memmap(path, dtype=np.uint16, mode="r")

def llmc(path):
    # llm.c: 256 int32 header (magic, version, token count), then tokens:
    # uint16 for magic 20240520 version 1.
    header = np.memmap(path, dtype="<i4", mode="r", shape=(256,))
    assert header[0] == 20240520 and header[1] == 1, header[:3]
    n = int(header[2])
    toks = np.memmap(path, dtype=np.uint16, mode="r", offset=256 * 4)
    assert len(toks) == n, (len(toks), n)
    return toks

kind, out = sys.argv[1], sys.argv[2]
parts = [{"megatron": megatron, "nanogpt": nanogpt, "llmc": llmc}[kind](p) for p in sys.argv[3:]]
np.concatenate(parts).astype("<u4").tofile(out)
`

// TestNumpyReadsBinaryFormats memory-maps the Megatron, nanoGPT and llm.c
// exports with numpy and checks every token against the shards, in order.
func TestNumpyReadsBinaryFormats(t *testing.T) {
	py := python(t, "numpy")
	c := realCorpus(t)
	script := filepath.Join(t.TempDir(), "read.py")
	if err := os.WriteFile(script, []byte(numpyReader), 0o644); err != nil {
		t.Fatal(err)
	}
	var all []uint32
	perSource := map[string][]uint32{}
	var train, val []uint32
	for _, s := range c.sources {
		for _, d := range readTokenDocs(t, c.tokens[s]) {
			all = append(all, d.tokens...)
			perSource[s] = append(perSource[s], d.tokens...)
		}
		tr, va := loaderSplit(t, []string{c.tokens[s]}, DefaultValFraction, DefaultSeqLen)
		train, val = append(train, tr...), append(val, va...)
	}
	run := func(kind string, files ...string) []uint32 {
		t.Helper()
		dump := filepath.Join(t.TempDir(), "tokens.u32")
		out, err := exec.Command(py, append([]string{script, kind, dump}, files...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy %s reader: %v\n%s", kind, err, out)
		}
		data, err := os.ReadFile(dump)
		if err != nil {
			t.Fatal(err)
		}
		toks := make([]uint32, len(data)/4)
		for i := range toks {
			toks[i] = binary.LittleEndian.Uint32(data[4*i:])
		}
		return toks
	}
	same := func(what string, got, want []uint32) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: numpy reads %d tokens, the shards hold %d", what, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: token %d is %d in numpy, %d in the shards", what, i, got[i], want[i])
			}
		}
	}
	mg := t.TempDir()
	export(t, c.tokenInputs(t), mg, Options{Format: FormatMegatron})
	for _, s := range c.sources {
		same("megatron "+s, run("megatron", filepath.Join(mg, s)), perSource[s])
	}
	ng := t.TempDir()
	export(t, c.tokenInputs(t), ng, Options{Format: FormatNanoGPT})
	same("nanogpt train.bin", run("nanogpt", filepath.Join(ng, "train.bin")), train)
	if len(val) > 0 {
		same("nanogpt val.bin", run("nanogpt", filepath.Join(ng, "val.bin")), val)
	}
	lc := t.TempDir()
	export(t, c.tokenInputs(t), lc, Options{Format: FormatLLMC})
	same("llmc train+val", run("llmc", filepath.Join(lc, "train.bin"), filepath.Join(lc, "val.bin")), append(append([]uint32(nil), train...), val...))
	if len(all) != len(train)+len(val) {
		t.Fatal("split lost tokens")
	}
}

// nanoGPTLoop is a small nanoGPT-style training loop (embeddings, one
// causal self-attention block, AdamW) reading random windows of train.bin
// through np.memmap, as nanoGPT's train.py does. It prints the mean loss
// of the first and last 10 of 50 steps.
const nanoGPTLoop = `
import sys, math
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_num_threads(1)
path, vocab = sys.argv[1], int(sys.argv[2])
data = np.memmap(path, dtype=np.uint16, mode="r")
assert int(data.max()) < vocab
# Keep it CPU-cheap: the output layer covers only the ids that occur.
present, data = np.unique(data, return_inverse=True)
vocab = len(present)
block, batch, width, steps = 32, 8, 48, 50
rng = np.random.default_rng(0)

def get_batch():
    ix = rng.integers(0, len(data) - block - 1, size=batch)
    x = torch.stack([torch.from_numpy(data[i:i + block].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block].astype(np.int64)) for i in ix])
    return x, y

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.register_buffer("mask", torch.tril(torch.ones(block, block)).bool())
    def forward(self, x):
        T = x.size(1)
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=2)
        att = (q @ k.transpose(1, 2)) / math.sqrt(width)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf")).softmax(dim=-1)
        x = x + self.proj(att @ v)
        return x + self.mlp(self.ln2(x))

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(block, width)
        self.block, self.ln = Block(), nn.LayerNorm(width)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
    def forward(self, idx, targets):
        x = self.tok(idx) + self.pos(torch.arange(idx.size(1)))
        logits = self.ln(self.block(x)) @ self.tok.weight.t()
        return F.cross_entropy(logits.view(-1, vocab), targets.view(-1))

model = GPT()
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
losses = []
for step in range(steps):
    x, y = get_batch()
    loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
print("first %.4f last %.4f" % (sum(losses[:10]) / 10, sum(losses[-10:]) / 10))
`

// TestPyTorchTrainsOnNanoGPTExport trains the loop above for 50 steps on
// the exported train.bin: the loss must fall.
func TestPyTorchTrainsOnNanoGPTExport(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	if testing.Short() {
		t.Skip("trains a model in PyTorch")
	}
	py := python(t, "numpy", "torch")
	c := realCorpus(t)
	out := t.TempDir()
	p := export(t, c.tokenInputs(t), out, Options{Format: FormatNanoGPT})
	script := filepath.Join(t.TempDir(), "train.py")
	if err := os.WriteFile(script, []byte(nanoGPTLoop), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	res, err := exec.CommandContext(ctx, py, script, filepath.Join(out, "train.bin"), fmt.Sprint(p.Tokenizer.VocabSize)).CombinedOutput()
	if err != nil {
		t.Fatalf("train.py: %v\n%s", err, res)
	}
	var first, last float64
	line := strings.TrimSpace(string(res))
	if i := strings.LastIndex(line, "\n"); i >= 0 {
		line = line[i+1:]
	}
	if _, err := fmt.Sscanf(line, "first %f last %f", &first, &last); err != nil {
		t.Fatalf("train.py printed %q", res)
	}
	t.Logf("nanoGPT-style loop on %d exported tokens: mean loss %.3f over the first 10 steps, %.3f over the last 10", p.Tokens, first, last)
	if !(last < first-0.5) {
		t.Fatalf("loss did not fall: %.4f -> %.4f", first, last)
	}
}
