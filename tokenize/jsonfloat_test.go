package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestJSONFloatLikeSerdeKnown pins values the tokenizers library (0.23.2)
// was seen to hold for these literals (written back by its save), which
// differ from the correctly rounded float64.
func TestJSONFloatLikeSerdeKnown(t *testing.T) {
	for in, want := range map[string]string{
		"-7.2457075119018555": "-7.245707511901856",
		"-7.2860612869262695": "-7.286061286926269",
		"-7.5891218185424805": "-7.58912181854248",
		"0":                   "0",
		"-0.5":                "-0.5",
		"12":                  "12",
		"1e3":                 "1000",
	} {
		got, err := parseJSONFloatLikeSerde(in)
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if s := strconv.FormatFloat(got, 'g', -1, 64); s != want {
			t.Errorf("%s: got %s, want %s", in, s, want)
		}
	}
	for _, bad := range []string{"", "-", "1x", "1e400"} {
		if _, err := parseJSONFloatLikeSerde(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestHFScoreParse loads Unigram vocabularies into Hugging Face tokenizers,
// writes them back with the library, and checks that smelt reads every
// score as the float64 the library holds: uni4k.model's 4,000 scores as the
// SentencePiece converter writes them (many of which a correctly rounding
// parser reads one unit in the last place away), and literals with long
// integer parts, long fractions and exponents.
func TestHFScoreParse(t *testing.T) {
	node := hfNode(t)
	dir := t.TempDir()
	meta := `{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}`
	conv := unigramJSON(t, dir, "conv", `null`, meta, false)
	raw, err := os.ReadFile(conv)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var model map[string]json.RawMessage
	if err := json.Unmarshal(doc["model"], &model); err != nil {
		t.Fatal(err)
	}
	var vocab [][2]json.RawMessage
	if err := json.Unmarshal(model["vocab"], &vocab); err != nil {
		t.Fatal(err)
	}
	// Crafted literals appended: long integers and fractions (past a u64's
	// 19 digits), exponents both ways, the edges of float64.
	for i, lit := range []string{
		"-123456789012345678901.5", "-18446744073709551615.9", "-18446744073709551616",
		"-0.12345678901234567890123", "-1844674407370955161.55", "-9007199254740993",
		"-1.7976931348623157e308", "-2.2250738585072014e-308", "-4.9e-324", "-1e-320",
		"-123.456e-300", "-0.000001e10", "-3.0000000000000004", "-1E2", "-0.1e+1",
	} {
		vocab = append(vocab, [2]json.RawMessage{json.RawMessage(fmt.Sprintf(`"crafted%d"`, i)), json.RawMessage(lit)})
	}
	model["vocab"], _ = json.Marshal(vocab)
	doc["model"], _ = json.Marshal(model)
	in := filepath.Join(dir, "in.json")
	data, _ := json.Marshal(doc)
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.json")
	cmd := exec.Command(node, filepath.Join(hfDir, "ref.js"), "save", in, out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference: %v\n%s", err, msg)
	}
	raw, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Model struct {
			Vocab [][2]json.RawMessage `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Model.Vocab) != len(vocab) {
		t.Fatalf("the library wrote %d pieces back, want %d", len(back.Model.Vocab), len(vocab))
	}
	bad, offByRounding := 0, 0
	for i, pair := range vocab {
		// The library writes the shortest text that reads back as the
		// float64 it holds; a correctly rounding parse recovers it.
		held, err := strconv.ParseFloat(string(back.Model.Vocab[i][1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseJSONFloatLikeSerde(string(pair[1]))
		if err != nil {
			t.Fatalf("entry %d %s: %v", i, pair[1], err)
		}
		if got != held {
			bad++
			if bad <= 5 {
				t.Errorf("entry %d %s: smelt reads %v, the library holds %v", i, pair[1], got, held)
			}
		}
		if exact, _ := strconv.ParseFloat(string(pair[1]), 64); exact != held {
			offByRounding++
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d scores read differently from the library", bad, len(vocab))
	}
	// Without the library's arithmetic this test would pass trivially.
	if offByRounding < 100 {
		t.Errorf("only %d of %d scores differ from correct rounding in the library: the test no longer shows the gap it guards", offByRounding, len(vocab))
	}
	t.Logf("%d scores equal to the library's; %d of them differ from the correctly rounded value", len(vocab)-bad, offByRounding)
}
