package filter

import (
	"reflect"
	"strings"
	"testing"
)

func TestConfigRoundTripAndStrictness(t *testing.T) {
	def := DefaultConfig()
	y, err := def.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfig(y)
	if err != nil {
		t.Fatal(err)
	}
	y2, _ := back.YAML()
	if string(y) != string(y2) || !reflect.DeepEqual(def.GopherRepetition, back.GopherRepetition) {
		t.Errorf("defaults do not survive YAML:\n%s\n---\n%s", y, y2)
	}
	c, err := ParseConfig([]byte("rules: [c4, gopher_quality]\ngopher_quality:\n  min_words: 20\ngopher_repetition:\n  top_n_grams: {2: 0.5}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GopherQuality.MinWords != 20 || c.GopherQuality.MaxWords != 100_000 || c.GopherRepetition.TopNGrams[2] != 0.5 ||
		c.GopherRepetition.TopNGrams[3] != 0.18 {
		t.Errorf("overrides not merged over defaults: %+v %+v", c.GopherQuality, c.GopherRepetition.TopNGrams)
	}
	p, err := c.Pipeline()
	if err != nil || len(p.Rules) != 2 || p.Rules[0].Name() != "c4" {
		t.Errorf("pipeline %v %v", p.Rules, err)
	}
	for in, want := range map[string]string{
		"gopher_quality:\n  min_wordz: 3\n": "line 2",
		"rules: [gopher, c4]\n":             "unknown rule",
		"rules: [c4, c4]\n":                 "twice",
	} {
		if _, err := ParseConfig([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%q): %v, want an error with %q", in, err, want)
		}
	}
	c = DefaultConfig()
	c.C4 = nil
	c.Rules = []string{RuleC4}
	if _, err := c.Pipeline(); err == nil {
		t.Error("a listed rule without settings must be an error")
	}
}
