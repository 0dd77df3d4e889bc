package trainer

import (
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestPlotLoss draws a noisy falling training loss, a validation curve and
// two eval sets: the PNG has the legend's colours (one line per curve), a
// smoothed curve beside the raw one, and text (axis titles, ticks). Set
// SMELT_PLOT_OUT=FILE to keep the picture and look at it.
func TestPlotLoss(t *testing.T) {
	var recs []Record
	for s := 1; s <= 400; s++ {
		noise := 0.3 * math.Sin(float64(s)*1.7)
		r := Record{Step: s, Loss: 3 + 4*math.Exp(-float64(s)/60) + noise, ValLoss: math.NaN()}
		if s%50 == 0 {
			r.ValLoss = 3.3 + 4*math.Exp(-float64(s)/60)
			r.Evals = map[string]float64{"eval/book": r.ValLoss + 0.6, "eval/book/bpb": 1.2, "eval/pages": r.ValLoss + 0.2, "val/a": 1}
		}
		recs = append(recs, r)
	}
	path := filepath.Join(t.TempDir(), "loss.png")
	if out := os.Getenv("SMELT_PLOT_OUT"); out != "" {
		path = out
	}
	if err := PlotLoss(path, recs); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	count := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			count[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), uint8(a >> 8)}]++
		}
	}
	for name, c := range map[string]color.RGBA{"raw": {158, 202, 225, 255}, "smoothed": {8, 81, 156, 255}, "val": {230, 85, 13, 255},
		"first eval": {49, 163, 84, 255}, "second eval": {117, 107, 177, 255}, "text": {40, 40, 40, 255}} {
		if count[c] < 100 {
			t.Errorf("%s: %d pixels of %v", name, count[c], c)
		}
	}
	if len(count) > 12 {
		t.Errorf("%d colours: a curve too many (per-source validation or bits per byte drawn?)", len(count))
	}
}

// TestSmoothCentredNoLag: the smoothed training loss follows a steeply
// falling curve from the first step, where a trailing average (the
// exponential moving average the plot drew before) stays above it: on the
// demo's curve the EMA lay above every raw point for ~200 steps.
func TestSmoothCentredNoLag(t *testing.T) {
	const n = 2000
	truth := func(s int) float64 { return 4.5 + 3*math.Exp(-float64(s)/150) }
	ys := make([]float64, n)
	for i := range ys {
		ys[i] = truth(i) + 0.2*math.Sin(float64(i)*2.3) // noise of mean ~0
	}
	h := n / 50
	sm := smoothCentred(ys, h)
	worst, worstAt := 0.0, 0
	for i := range sm {
		if d := math.Abs(sm[i] - truth(i)); d > worst {
			worst, worstAt = d, i
		}
	}
	if worst > 0.12 {
		t.Errorf("smoothed curve %.3f off the true loss at step %d (raw noise 0.2)", worst, worstAt)
	}
	// What the trailing EMA with the same reach did: far above early on.
	ema, alpha := ys[0], 1-math.Exp(-1/float64(h))
	for i := 1; i <= 100; i++ {
		ema += alpha * (ys[i] - ema)
	}
	if ema-truth(100) < 0.2 {
		t.Errorf("the EMA at step 100 is %.3f above the curve: the test's curve is not steep enough to tell", ema-truth(100))
	}
	// A straight line comes back exactly, ends included.
	line := make([]float64, 50)
	for i := range line {
		line[i] = 7 - 0.01*float64(i)
	}
	for i, v := range smoothCentred(line, 10) {
		if math.Abs(v-line[i]) > 1e-9 {
			t.Fatalf("line: point %d smoothed to %v, want %v", i, v, line[i])
		}
	}
	if got := smoothCentred([]float64{3}, 5); len(got) != 1 || got[0] != 3 {
		t.Errorf("one point: %v", got)
	}
}
