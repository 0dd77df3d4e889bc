package dedup

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"strings"
	"testing"

	lsh "github.com/ekzhu/minhash-lsh"
)

func TestNormalize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Hello   World", "hello world"},
		{"  \tHello\r\n\nWorld \n", "hello world"},
		{"caf\u0065\u0301", "caf\u00e9"},      // NFD e + combining acute -> NFC é
		{"CAF\u00c9", "caf\u00e9"},            // case folding of a non-ASCII letter
		{"STRASSE Straße", "strasse strasse"}, // full case folding: ß -> ss
		{"ΣΊΣΥΦΟΣ", "σίσυφοσ"},                // Greek final sigma folds to σ
		{"a\u00a0b\u2003c", "a b c"},          // Unicode spaces collapse
		{"", ""},
	} {
		if got := Normalize(c.in); got != c.want {
			t.Errorf("Normalize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello, World! It's 2024.", []string{"hello", "world", "it", "s", "2024"}},
		{"Ünïcode—text «quoted»", []string{"ünïcode", "text", "quoted"}},
		{"...", nil},
	} {
		if got := Words(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Words(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// wordSets makes two texts of distinct words with a known Jaccard
// similarity of their word sets: common shared words, a and b private ones.
func wordSets(r *rand.Rand, common, a, b int) (string, string) {
	var sa, sb []string
	for i := 0; i < common; i++ {
		w := fmt.Sprintf("c%dz%d", i, r.Int63())
		sa, sb = append(sa, w), append(sb, w)
	}
	for i := 0; i < a; i++ {
		sa = append(sa, fmt.Sprintf("a%dz%d", i, r.Int63()))
	}
	for i := 0; i < b; i++ {
		sb = append(sb, fmt.Sprintf("b%dz%d", i, r.Int63()))
	}
	r.Shuffle(len(sa), func(i, j int) { sa[i], sa[j] = sa[j], sa[i] })
	r.Shuffle(len(sb), func(i, j int) { sb[i], sb[j] = sb[j], sb[i] })
	return strings.Join(sa, " "), strings.Join(sb, " ")
}

// TestJaccardEstimate checks that the signatures estimate the Jaccard
// similarity without bias and with the binomial spread sqrt(J(1-J)/perms)
// that independent permutations give.
func TestJaccardEstimate(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	const perms, trials = 112, 300
	for _, c := range []struct{ common, a, b int }{{100, 100, 100}, {300, 50, 25}, {80, 10, 10}, {20, 200, 180}} {
		j := float64(c.common) / float64(c.common+c.a+c.b)
		var sum, sq float64
		for trial := 0; trial < trials; trial++ {
			h, err := NewHasher(perms, 1, uint64(trial)+1)
			if err != nil {
				t.Fatal(err)
			}
			ta, tb := wordSets(r, c.common, c.a, c.b)
			e := Jaccard(h.Signature(ta), h.Signature(tb))
			sum += e
			sq += (e - j) * (e - j)
		}
		mean, rmse := sum/trials, math.Sqrt(sq/trials)
		ideal := math.Sqrt(j * (1 - j) / perms)
		t.Logf("J=%.3f: mean estimate %.4f, rmse %.4f (binomial %.4f)", j, mean, rmse, ideal)
		if math.Abs(mean-j) > 3*ideal/math.Sqrt(trials)+0.005 {
			t.Errorf("J=%.3f: biased, mean estimate %.4f", j, mean)
		}
		if rmse > 1.25*ideal+0.002 {
			t.Errorf("J=%.3f: rmse %.4f, want about %.4f", j, rmse, ideal)
		}
	}
}

func TestSignatureProperties(t *testing.T) {
	h, err := NewHasher(112, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	text := "The quick brown fox jumps over the lazy dog near the river bank today."
	a := h.Signature(text)
	if len(a) != 112 {
		t.Fatalf("signature of %d values", len(a))
	}
	// Case, punctuation and white space do not change the words.
	if b := h.Signature("the QUICK brown fox, jumps over the lazy dog  near the river-bank today"); !slices.Equal(a, b) {
		t.Error("normalisation changes the signature")
	}
	h2, _ := NewHasher(112, 5, 1)
	if !slices.Equal(a, h2.Signature(text)) {
		t.Error("signatures differ between hashers with the same seed")
	}
	h3, _ := NewHasher(112, 5, 2)
	if Jaccard(a, h3.Signature(text)) > 0.1 {
		t.Error("another seed gives the same permutations")
	}
	// The non-ASCII path hashes ASCII words like the ASCII path does.
	if b := h.Signature(text + " Ünïcode"); Jaccard(a, b) < 0.85 {
		t.Errorf("one non-ASCII word changes the signature: %.3f", Jaccard(a, b))
	}
	if b := h.Signature(strings.Replace(text, "quick", "QUİCK", 1)); Jaccard(a, b) > 0.9 {
		t.Errorf("a changed word leaves the signature: %.3f", Jaccard(a, b))
	}
	if h.Signature("  ... ") != nil {
		t.Error("a text without words has a signature")
	}
	if s := h.Signature("two words"); s == nil || Jaccard(s, h.Signature("Two, words!")) != 1 {
		t.Error("a text shorter than one shingle is one shingle")
	}
}

// TestEkzhuCompatible checks that the signatures work in the
// ekzhu/minhash-lsh index as they are (its Add and Query take []uint64),
// and that they estimate similarity like ekzhu's own Minhash type.
func TestEkzhuCompatible(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	h, _ := NewHasher(112, 1, 1)
	idx := lsh.NewMinhashLSH64(112, 0.8)
	var texts []string
	for i := 0; i < 200; i++ {
		a, _ := wordSets(r, 0, 300, 0)
		texts = append(texts, a)
		idx.Add(i, h.Signature(a))
	}
	idx.Index()
	for i := 0; i < 200; i += 17 {
		w := strings.Fields(texts[i])
		w[5] = "changed" // Jaccard 299/301
		got := idx.Query(h.Signature(strings.Join(w, " ")))
		if !slices.Contains(got, any(i)) || len(got) > 3 {
			t.Errorf("query for a near copy of %d returned %v", i, got)
		}
	}
	// The same pair estimated by both MinHash implementations.
	a, b := wordSets(r, 200, 100, 100)
	ours := Jaccard(h.Signature(a), h.Signature(b))
	em := func(s string) []uint64 {
		m := lsh.NewMinhash(1, 112)
		for _, w := range Words(s) {
			m.Push([]byte(w))
		}
		return m.Signature()
	}
	theirs := Jaccard(em(a), em(b))
	if math.Abs(ours-0.5) > 0.15 || math.Abs(theirs-0.5) > 0.15 {
		t.Errorf("estimates of J=0.5: ours %.3f, ekzhu %.3f", ours, theirs)
	}
}

func TestBandsRows(t *testing.T) {
	if b, r := BandsRows(112, 0.8); b != 14 || r != 8 {
		t.Errorf("BandsRows(112, 0.8) = %dx%d, want 14x8", b, r)
	}
	for _, th := range []float64{0.5, 0.6, 0.7, 0.8, 0.9} {
		b, r := BandsRows(112, th)
		if b*r > 112 || CandidateProbability(th, b, r) < 0.9 {
			t.Errorf("threshold %.1f: %dx%d catches %.3f", th, b, r, CandidateProbability(th, b, r))
		}
	}
	opt := DefaultOptions()
	opt.Bands, opt.Rows = 20, 8
	if err := opt.Validate(); err == nil {
		t.Error("20x8 bands over 112 permutations accepted")
	}
	opt = DefaultOptions()
	opt.Scope = "planet"
	if err := opt.Validate(); err == nil {
		t.Error("unknown scope accepted")
	}
}

// TestPushKernelsAgree checks the vector kernel (where the CPU has one)
// against the scalar loop for odd and even shingle counts and permutation
// counts that are and are not multiples of eight.
func TestPushKernelsAgree(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	for _, perms := range []int{1, 7, 8, 13, 64, 112, 256} {
		h, err := NewHasher(perms, 5, uint64(perms))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 2, 3, 8, 9, 31, 200} {
			xs := make([]uint64, n)
			for i := range xs {
				xs[i] = r.Uint64()
			}
			got, want := make([]uint64, perms), make([]uint64, perms)
			for i := range got {
				got[i], want[i] = math.MaxUint64, math.MaxUint64
			}
			h.pushAll(got, xs)
			for _, x := range xs {
				for i := range want {
					want[i] = min(want[i], h.a[i]*x+h.b[i])
				}
			}
			gen := make([]uint64, perms)
			for i := range gen {
				gen[i] = math.MaxUint64
			}
			pushGeneric(gen, h.a, h.b, xs)
			if !slices.Equal(got, want) || !slices.Equal(gen, want) {
				t.Fatalf("perms %d, %d shingles: kernels disagree", perms, n)
			}
		}
	}
}
