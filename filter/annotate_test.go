package filter

import (
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestAnnotateKeepsAndRecords: in annotate mode every document is kept;
// one that fails several rules records every one of them (not only the
// first, where the normal mode stops), with the values the normal mode
// reports, and a clean document records none.
func TestAnnotateKeepsAndRecords(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Annotate = true
	pipe, err := cfg.Pipeline()
	if err != nil {
		t.Fatal(err)
	}
	ann := &Stage{Pipeline: pipe, Annotate: true}
	plain := &Stage{Pipeline: pipe}
	bad := "buy now buy now buy now buy now"
	good := "The old man walked slowly along the quiet river bank, thinking about the long winter that was coming to the valley.\n" +
		"His daughter had written from the city, asking whether he would finally sell the farm and move somewhere warmer.\n" +
		"He had not answered yet, because every answer he tried sounded either stubborn or defeated when he read it aloud.\n" +
		"By the time he reached the mill, the light was fading and the geese were settling on the far side of the water.\n" +
		"Tomorrow, he decided, he would mend the fence first and leave the letter until the evening, when the house was warm."
	dBad, err := ann.Process(&shards.Document{ID: "bad", Text: bad})
	if err != nil {
		t.Fatal(err)
	}
	sig := Signals(dBad)
	if dBad.Drop != nil || len(sig) < 2 {
		t.Fatalf("annotated bad document: drop %v, signals %v; want kept with at least two signals", dBad.Drop, sig)
	}
	pBad, _ := plain.Process(&shards.Document{ID: "bad", Text: bad})
	if pBad.Drop == nil || sig[pBad.Drop.Reason] != pBad.Drop.Value {
		t.Errorf("normal mode dropped it for %+v; annotate recorded %v", pBad.Drop, sig)
	}
	dGood, _ := ann.Process(&shards.Document{ID: "good", Text: good})
	if dGood.Drop != nil || len(Signals(dGood)) != 0 {
		t.Errorf("clean document: drop %v, signals %v", dGood.Drop, Signals(dGood))
	}
	if !strings.Contains(dGood.Meta, `"signals":{}`) {
		t.Errorf("clean document's meta %q: want an empty signals object (annotated, nothing applied)", dGood.Meta)
	}
}
