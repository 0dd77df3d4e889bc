package pipelines

import (
	"strings"
	"testing"
)

// TestRecipeValFraction: an explicit val_fraction 0 stays 0 (no split);
// unset, it is 0.01.
func TestRecipeValFraction(t *testing.T) {
	for _, c := range []struct {
		line string
		want float64
	}{{"", 0.01}, {"  val_fraction: 0\n", 0}, {"  val_fraction: 0.2\n", 0.2}} {
		r, err := ParseRecipe([]byte(testRecipe(true)+c.line), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := *r.Train.ValFraction; got != c.want {
			t.Errorf("%q: val_fraction %v, want %v", c.line, got, c.want)
		}
	}
	if _, err := ParseRecipe([]byte(testRecipe(true)+"  val_fraction: 1\n"), t.TempDir()); err == nil || !strings.Contains(err.Error(), "val_fraction") {
		t.Fatalf("val_fraction 1 accepted: %v", err)
	}
}
