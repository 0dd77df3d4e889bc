package dedup

import (
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestInvalidUTF8NotFolded is issue 19 item 15: two different Latin-1
// documents (invalid UTF-8) must not hash alike, as they did when every
// invalid byte was folded to U+FFFD.
func TestInvalidUTF8NotFolded(t *testing.T) {
	a := "caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve gar\xe7on" // Latin-1
	b := "caf\xe8 cr\xe9me br\xfcl\xe8e, na\xeeve gar\xe0on" // other letters
	if Normalize(a) == Normalize(b) {
		t.Errorf("Normalize folds different invalid bytes together: %q", Normalize(a))
	}
	opt := DefaultOptions()
	sk, err := NewSketcher(&opt)
	if err != nil {
		t.Fatal(err)
	}
	ka := sk.Sketch(&shards.Document{ID: "a", Text: a})
	kb := sk.Sketch(&shards.Document{ID: "b", Text: b})
	if ka.Exact == kb.Exact {
		t.Errorf("two different Latin-1 documents have the same exact hash")
	}
	// Case folding still applies to the valid parts, and the same bytes
	// still hash alike.
	if Normalize("CAF\xe9 Bar") != Normalize("caf\xe9   bar") {
		t.Errorf("valid text around invalid bytes is not normalised: %q vs %q", Normalize("CAF\xe9 Bar"), Normalize("caf\xe9   bar"))
	}
	// An invalid byte never equals the valid character of the same byte
	// value nor a valid sequence made by joining neighbours.
	if Normalize("\xc3\xa9") == Normalize("\xc3 \xa9") || Normalize("x\xe9") == Normalize("x\u00e9") {
		t.Errorf("invalid bytes collide with valid text")
	}
	// The words MinHash shingles keep the raw bytes too.
	wa, wb := Words(a), Words(b)
	same := len(wa) == len(wb)
	for i := 0; same && i < len(wa); i++ {
		same = wa[i] == wb[i]
	}
	if same {
		t.Errorf("Words folds invalid bytes: %q", wa)
	}
}
