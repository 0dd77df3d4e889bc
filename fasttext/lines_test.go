package fasttext_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/fasttext"
)

// PredictLines reads input as fastText's predict command does: one
// prediction per line, a literal "</s>" ending a line where it stands, and
// no end-of-line token for a last line without its newline.
func TestPredictLines(t *testing.T) {
	r := ref(t)
	m, err := fasttext.Load(r.lidPath())
	if err != nil {
		t.Fatal(err)
	}
	var got [][]fasttext.Prediction
	input := "Das ist ein Test\r\nc'est la vie </s> und so weiter\n\nhola amigo"
	err = m.PredictLines(strings.NewReader(input), 2, 0, func(p []fasttext.Prediction) error {
		got = append(got, slices.Clone(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("%d predictions for 4 lines with one </s>: %v", len(got), got)
	}
	line := func(s string) []fasttext.Prediction {
		p, err := m.PredictLine(s, 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i, want := range [][]fasttext.Prediction{line("Das ist ein Test\r"), line("c'est la vie </s>"), line(" und so weiter"), line("")} {
		if !slices.Equal(got[i], want) {
			t.Errorf("prediction %d: %v, want %v", i, got[i], want)
		}
	}
	// The last line has no newline, so no EOS: not what PredictLine (which
	// ends every text with one) gives.
	if slices.Equal(got[4], line("hola amigo")) {
		t.Errorf("last line without newline predicted as if it had one: %v", got[4])
	}
	// Predict reads newlines as spaces.
	a, _ := m.Predict("Das ist\nein Test", 1, 0)
	b, _ := m.PredictLine("Das ist ein Test", 1, 0)
	if !slices.Equal(a, b) {
		t.Errorf("Predict %v, PredictLine %v", a, b)
	}
}

// Broken model files give errors that say what and where, never a panic.
func TestLoadErrors(t *testing.T) {
	r := ref(t)
	data := readFile(t, r.lidPath())
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "magic"},
		{"text", []byte("hello world, not a model"), "not a fastText model"},
		{"truncated args", data[:20], "args at byte offset"},
		{"truncated dictionary", data[:5000], "byte offset"},
		{"truncated matrix", data[:len(data)-100], "bytes left"},
		{"trailing bytes", append(slices.Clone(data), 0), "trailing bytes"},
		{"bad version", append([]byte{data[0], data[1], data[2], data[3], 99, 0, 0, 0}, data[8:]...), "version 99"},
	} {
		_, err := fasttext.Read(strings.NewReader(string(c.data)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

// A line longer than the read buffer is one prediction, as it is in
// fastText.
func TestPredictLinesLongLine(t *testing.T) {
	r := ref(t)
	m, err := fasttext.Load(r.lidPath())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("Das ist ein sehr langer Satz ohne Ende ", 5000) // 195 KB
	var n int
	var got []fasttext.Prediction
	err = m.PredictLines(strings.NewReader(long+"\nshort line\n"), 1, 0, func(p []fasttext.Prediction) error {
		if n == 0 {
			got = slices.Clone(p)
		}
		n++
		return nil
	})
	if err != nil || n != 2 {
		t.Fatalf("%d predictions, %v", n, err)
	}
	if want, _ := m.PredictLine(long, 1, 0); !slices.Equal(got, want) {
		t.Errorf("long line: %v, want %v", got, want)
	}
}
