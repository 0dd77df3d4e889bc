package tokenize

import (
	"math/rand"
	"strings"
	"testing"
)

// TestByteTrie checks common-prefix search against a map of every key, on
// keys with wide and narrow fan-out.
func TestByteTrie(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var keys []string
	vals := []int32{}
	want := map[string]int32{}
	for i := 0; i < 3000; i++ {
		n := 1 + rng.Intn(6)
		var sb strings.Builder
		for j := 0; j < n; j++ {
			if rng.Intn(2) == 0 {
				sb.WriteByte(byte(rng.Intn(256)))
			} else {
				sb.WriteByte("abc"[rng.Intn(3)])
			}
		}
		k := sb.String()
		keys = append(keys, k)
		vals = append(vals, int32(i))
		want[k] = int32(i) // the last value wins
	}
	tr := newByteTrie(keys, vals)
	for i := 0; i < 20000; i++ {
		s := keys[rng.Intn(len(keys))] + string(rune(rng.Intn(300)))
		n := int32(0)
		for end := 1; end <= len(s); end++ {
			if n = tr.step(n, s[end-1]); n < 0 {
				// No key starts with s[:end].
				for k := range want {
					if strings.HasPrefix(k, s[:end]) {
						t.Fatalf("%q: walk stopped, but key %q continues it", s[:end], k)
					}
				}
				break
			}
			v, ok := want[s[:end]]
			if got := tr.value[n]; (got >= 0) != ok || (ok && got != v) {
				t.Fatalf("%q: value %d, want %d (%v)", s[:end], got, v, ok)
			}
		}
	}
}
