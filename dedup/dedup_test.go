package dedup

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

func text(r *rand.Rand, n int) string { return strings.Join(randomWords(r, n), " ") }

func decisions(t *testing.T, docs []*shards.Document, opt Options) map[string]Decision {
	t.Helper()
	res := stagedDedup(t, docs, opt, 2, 3, "")
	// Cluster numbers follow input order; compare what routing sees.
	out := map[string]Decision{}
	for pos, d := range res.Decisions {
		d.Cluster, d.First, d.Size = 0, false, 0
		out[docs[pos].ID] = d
	}
	return out
}

func TestSurvivorRules(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	body := text(r, 100)
	docs := []*shards.Document{
		{ID: "c", Text: body},
		{ID: "a", Text: body},
		{ID: "b", Text: strings.ToUpper(body)},
	}
	// Without quality scores the smallest id survives.
	got := decisions(t, docs, DefaultOptions())
	if got["a"].Reason != "" || got["b"].DupOf != "a" || got["c"].DupOf != "a" || got["b"].Reason != ReasonExact {
		t.Errorf("no scores: %+v", got)
	}
	// A scored document beats unscored ones, the highest score wins.
	docs[0].Quality, docs[0].HasQuality = 0.2, true
	docs[2].Quality, docs[2].HasQuality = 0.7, true
	got = decisions(t, docs, DefaultOptions())
	if got["b"].Reason != "" || got["a"].DupOf != "b" || got["c"].DupOf != "b" {
		t.Errorf("scores: %+v", got)
	}
}

func TestDecisionIndependentOfOrder(t *testing.T) {
	t.Parallel() // issue 26 T1: independent of the package's other tests
	s := genCorpus(21, 120, "o", "web")
	want := decisions(t, s.docs, DefaultOptions())
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 3; i++ {
		docs := append([]*shards.Document(nil), s.docs...)
		r.Shuffle(len(docs), func(a, b int) { docs[a], docs[b] = docs[b], docs[a] })
		if got := decisions(t, docs, DefaultOptions()); !reflect.DeepEqual(got, want) {
			t.Fatal("decision changes with input order")
		}
	}
}

func TestScopeSource(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	body := text(r, 80)
	near := strings.Replace(body, " ", " extra ", 1)
	docs := []*shards.Document{
		{ID: "a", Source: "s1", Text: body},
		{ID: "b", Source: "s2", Text: body},
		{ID: "c", Source: "s2", Text: near},
	}
	if got := decisions(t, docs, DefaultOptions()); len(got) != 3 {
		t.Errorf("global scope: %+v", got)
	}
	opt := DefaultOptions()
	opt.Scope = ScopeSource
	got := decisions(t, docs, opt)
	if _, ok := got["a"]; ok || got["c"].DupOf != "b" || got["c"].Reason != ReasonMinHash {
		t.Errorf("source scope: %+v", got)
	}
}

func TestModes(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	body := text(r, 80)
	near := strings.Replace(body, " ", " extra ", 1)
	docs := []*shards.Document{
		{ID: "a", URL: "https://x/1", Text: body},
		{ID: "b", URL: "https://x/2", Text: body + " "},
		{ID: "c", URL: "https://x/3", Text: near},
		{ID: "d", URL: "https://x/1", Text: text(r, 50)},
		{ID: "e", Text: ""},
		{ID: "f", Text: " \n"},
	}
	exact := Options{Exact: true}
	got := decisions(t, docs, exact)
	want := map[string]Decision{
		"a": {}, "b": {Reason: ReasonExact, Value: "1", DupOf: "a"},
		"e": {}, "f": {Reason: ReasonExact, Value: "1", DupOf: "e"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("exact only: %+v", got)
	}
	url := Options{URL: true}
	if got := decisions(t, docs, url); len(got) != 2 || got["d"].Reason != ReasonURL || got["d"].DupOf != "a" {
		t.Errorf("url only: %+v", got)
	}
	mh := DefaultOptions()
	mh.Exact = false
	got = decisions(t, docs, mh)
	if got["b"].Reason != ReasonMinHash || got["b"].Value != "1.0000" || got["c"].Reason != ReasonMinHash || got["c"].DupOf != "a" {
		t.Errorf("minhash only: %+v", got)
	}
	if _, ok := got["e"]; ok {
		t.Errorf("documents without words clustered by MinHash: %+v", got)
	}
	if err := (&Options{}).Validate(); err == nil {
		t.Error("options with nothing enabled accepted")
	}
}
