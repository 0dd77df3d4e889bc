package pipelines

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"
)

var errLineRE = regexp.MustCompile(`line (\d+)`)

// FuzzParseRecipe feeds the recipe parser mutations of the bundled recipes
// and of the recipes the tests use. For any input it must return in good
// time without panicking; an error must name a line the input has; and a
// recipe it accepts must resolve to YAML that parses back to the same
// recipe (a run directory records that YAML and re-reads it).
//
//	go test ./pipelines -run '^$' -fuzz FuzzParseRecipe -fuzztime 30s
func FuzzParseRecipe(f *testing.F) {
	for _, n := range BundledNames() {
		data, _ := Bundled(n)
		f.Add(data)
	}
	f.Add([]byte(minimal))
	for _, tc := range recipeErrorCases {
		f.Add([]byte(tc.yaml))
	}
	for _, tc := range recipeLineCases {
		f.Add([]byte(tc.yaml))
	}
	for _, s := range fuzzFindings {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
	})
}

// checkParse asserts FuzzParseRecipe's properties for one input.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	start := time.Now()
	r, err := ParseRecipe(data, "/base")
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("ParseRecipe took %s on %d bytes", took, len(data))
	}
	if err != nil {
		msg := err.Error()
		if msg == "" {
			t.Fatal("empty error")
		}
		lines := yamlLines(data)
		for _, m := range errLineRE.FindAllStringSubmatch(msg, -1) {
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
				t.Fatalf("error names line %d of a %d-line recipe: %s", n, lines, msg)
			}
		}
		return
	}
	y, err := r.YAML()
	if err != nil {
		t.Fatalf("accepted recipe does not encode: %v", err)
	}
	r2, err := ParseRecipe(y, "/elsewhere")
	if err != nil {
		t.Fatalf("resolved recipe does not parse back: %v\n%s", err, y)
	}
	h1, _ := r.Hash()
	h2, _ := r2.Hash()
	if h1 != h2 {
		y2, _ := r2.YAML()
		t.Fatalf("resolved recipe changes when parsed again:\n%s\n---\n%s", y, y2)
	}
}

// yamlLines counts lines as yaml.v3 (libyaml) does: CR LF, CR, LF, NEL,
// LS and PS each end one.
func yamlLines(data []byte) int {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	n := 1 + bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r"))
	for _, br := range []string{"\u0085", "\u2028", "\u2029"} {
		n += bytes.Count(data, []byte(br))
	}
	return n
}

// fuzzFindings are inputs that broke the parser's properties, kept as
// seeds; TestRecipeFuzzFindings runs them as ordinary tests. Add each new
// finding here (go test writes it to testdata/fuzz/FuzzParseRecipe).
var fuzzFindings = []string{
	// Found by hand while writing this fuzz test (the line check is in
	// recipeLineCases): an anchored source used again through an alias; its
	// error pointed at the anchor's line, not the alias's.
	"name: t\nsources:\n  - &s\n    name: web\n    inputs: [a]\n    weight: 1\n  - *s\ntokenizer: {name: gpt2}\n",
	// Found by the fuzzer: a lone CR ends a line for YAML (old Mac line
	// ends), so "line 2" was right; the test counted only LF.
	"\r0",
	"name: t\r\nsources: 3\r\n",
}

func TestRecipeFuzzFindings(t *testing.T) {
	for i, s := range fuzzFindings {
		t.Run(strconv.Itoa(i), func(t *testing.T) { checkParse(t, []byte(s)) })
	}
}
