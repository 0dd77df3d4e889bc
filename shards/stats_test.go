package shards

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMetricMergeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var whole, a, b Metric
	for i := 0; i < 1000; i++ {
		x := rng.NormFloat64()*3 + 10
		whole.Add(x)
		if i%3 == 0 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Merge(b)
	if a.N != whole.N || math.Abs(a.Mean-whole.Mean) > 1e-12 || math.Abs(a.Std()-whole.Std()) > 1e-9 ||
		a.Min != whole.Min || a.Max != whole.Max {
		t.Fatalf("merged %+v, whole %+v", a, whole)
	}
}

func TestStatsBalance(t *testing.T) {
	s := NewStats("x")
	s.Declare([]string{"r/a"}, []string{"e/b"})
	for i := 0; i < 10; i++ {
		s.In.Add(10)
	}
	s.Keep(&Document{Lang: "en", Source: "s", Text: "hi"})
	s.Drop("r/a", 10)
	if err := s.Balanced(); err == nil {
		t.Fatal("8 items unaccounted for, Balanced said fine")
	}
	for i := 0; i < 8; i++ {
		s.Error("e/b", 10, "file:1: bad")
	}
	if err := s.Balanced(); err != nil {
		t.Fatal(err)
	}
	o := NewStats("x")
	if err := o.Merge(s); err != nil {
		t.Fatal(err)
	}
	if err := o.Balanced(); err != nil || o.In.Docs != 10 || o.Errors["e/b"].Docs != 8 {
		t.Fatalf("merge lost counts: %+v", o)
	}
}
