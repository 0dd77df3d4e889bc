package pipelines

import (
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// TestTokenCompressionKey checks the token_compression key (issue 25): it
// reaches the tokenize task's configuration (the one the takedown reruns
// with too); of the steps up to tokenize only tokenize's fingerprint
// depends on it, and an unset key is none. An unset key stays unset in the
// resolved recipe, whose hash is then unchanged.
func TestTokenCompressionKey(t *testing.T) {
	dir := t.TempDir()
	setupRun(t, dir, false)
	base := testRecipe(false)
	plan := func(y string) (*Recipe, *Plan) {
		t.Helper()
		r, err := ParseRecipe([]byte(y), dir)
		if err != nil {
			t.Fatal(err)
		}
		p, err := NewPlan(r)
		if err != nil {
			t.Fatal(err)
		}
		return r, p
	}
	rd, pd := plan(base)
	rn, pn := plan(base + "token_compression: none\n")
	rz, pz := plan(base + "token_compression: zstd\n")
	if rd.TokenCompression != "" {
		t.Fatalf("unset token_compression resolved to %q", rd.TokenCompression)
	}
	if y, _ := rd.YAML(); strings.Contains(string(y), "token_compression") {
		t.Fatalf("resolved recipe names token_compression though unset:\n%s", y)
	}
	// Steps come in order: those before tokenize do not depend on it.
	upstream := true
	for i, st := range pd.Steps {
		if st.Fingerprint != pn.Steps[i].Fingerprint {
			t.Errorf("step %s: fingerprint differs between no token_compression and none", st.Name)
		}
		if st.Kind == KindTokenize {
			upstream = false
			if st.Fingerprint == pz.Steps[i].Fingerprint {
				t.Errorf("tokenize: the same fingerprint with zstd as with none")
			}
		} else if upstream && st.Fingerprint != pz.Steps[i].Fingerprint {
			t.Errorf("step %s, before tokenize: fingerprint depends on token_compression", st.Name)
		}
	}
	if upstream {
		t.Fatal("no tokenize step")
	}
	for _, c := range []struct {
		r    *Recipe
		p    *Plan
		want string
	}{{rd, pd, ""}, {rn, pn, shards.TokenCompressionNone}, {rz, pz, shards.TokenCompressionZstd}} {
		run := &Run{Dir: dir, Recipe: c.r, Plan: c.p}
		cfg, err := run.TokenizeConfig(0)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Compression != c.want {
			t.Errorf("tokenize config compression %q, want %q", cfg.Compression, c.want)
		}
	}
}
