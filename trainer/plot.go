package trainer

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The plot's text is drawn with golang.org/x/image's basicfont (a 7x13
// bitmap font in Go source): the standard library has no font, and axis
// titles, tick labels and a legend need letters.

// series is one line of the plot.
type series struct {
	name  string
	c     color.RGBA
	xs    []int
	ys    []float64
	dots  bool
	width int
}

// PlotLoss draws the run's curves against the step as a PNG at path,
// written atomically: the training loss raw (light) and smoothed (a local
// straight-line fit over a centred window, dark; see smoothCentred), the
// validation loss and each eval
// set's loss (eval/NAME columns) with dots at the evaluations, with axis
// titles, tick labels and a legend. The y axis spans the curves after the
// first 2% of the steps (the first steps' loss, near ln(vocab), would
// flatten the rest); what lies above is clipped. The numbers are in
// log.csv.
func PlotLoss(path string, recs []Record) error {
	const W, H = 960, 560
	const left, right, top, bottom = 78, 24, 44, 56
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	var ss []series
	raw := series{name: "train loss", c: color.RGBA{158, 202, 225, 255}, width: 1}
	smooth := series{name: "train loss, smoothed", c: color.RGBA{8, 81, 156, 255}, width: 2}
	val := series{name: "validation (held out)", c: color.RGBA{230, 85, 13, 255}, dots: true, width: 2}
	evals := map[string]*series{}
	palette := []color.RGBA{{49, 163, 84, 255}, {117, 107, 177, 255}, {214, 39, 40, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255}, {188, 189, 34, 255}, {23, 190, 207, 255}}
	var names []string
	maxStep := 1
	for _, r := range recs {
		maxStep = max(maxStep, r.Step)
		if finite(r.Loss) {
			raw.xs, raw.ys = append(raw.xs, r.Step), append(raw.ys, r.Loss)
		}
		if finite(r.ValLoss) {
			val.xs, val.ys = append(val.xs, r.Step), append(val.ys, r.ValLoss)
		}
		for k, v := range r.Evals {
			name, ok := strings.CutPrefix(k, "eval/")
			if !ok || strings.HasSuffix(name, "/bpb") || !finite(v) {
				continue
			}
			s := evals[name]
			if s == nil {
				s = &series{name: "eval: " + name, dots: true, width: 2}
				evals[name] = s
				names = append(names, name)
			}
			s.xs, s.ys = append(s.xs, r.Step), append(s.ys, v)
		}
	}
	sort.Strings(names)
	smooth.xs, smooth.ys = raw.xs, smoothCentred(raw.ys, max(1, len(raw.ys)/50))
	ss = append(ss, raw, smooth)
	if len(val.xs) > 0 {
		ss = append(ss, val)
	}
	for i, n := range names {
		s := evals[n]
		s.c = palette[i%len(palette)]
		ss = append(ss, *s)
	}
	// The y range: every curve, the training loss after its first 2%.
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range ss {
		for j, y := range s.ys {
			if i < 2 && s.xs[j] < maxStep/50 && len(s.ys) > 50 {
				continue
			}
			lo, hi = min(lo, y), max(hi, y)
		}
	}
	if !finite(lo) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		lo, hi = lo-0.5, hi+0.5
	}
	ystep := niceStep((hi - lo) / 8)
	lo, hi = math.Floor(lo/ystep)*ystep, math.Ceil(hi/ystep)*ystep
	pw, ph := W-left-right, H-top-bottom
	x := func(step int) int { return left + int(float64(pw)*float64(step)/float64(maxStep)) }
	y := func(v float64) int { return top + ph - int(math.Round(float64(ph)*(v-lo)/(hi-lo))) }
	grid := color.RGBA{232, 232, 232, 255}
	ink := color.RGBA{40, 40, 40, 255}
	// Grid, ticks and labels.
	for v := lo; v <= hi+ystep/2; v += ystep {
		gy := y(v)
		line(img, left, gy, W-right, gy, grid)
		line(img, left-5, gy, left, gy, ink)
		label := strconv.FormatFloat(v, 'f', decimals(ystep), 64)
		text(img, left-8-7*len(label), gy+4, label, ink)
	}
	xstep := max(1, int(niceStep(float64(maxStep)/8)))
	for s := 0; s <= maxStep; s += xstep {
		gx := x(s)
		line(img, gx, top, gx, top+ph, grid)
		line(img, gx, top+ph, gx, top+ph+5, ink)
		label := strconv.Itoa(s)
		text(img, gx-7*len(label)/2, top+ph+19, label, ink)
	}
	line(img, left, top+ph, W-right, top+ph, ink)
	line(img, left, top, left, top+ph, ink)
	text(img, left+pw/2-14, H-12, "step", ink)
	text(img, 8, top-14, "loss (nats per token)", ink)
	// Curves, clipped to the plot.
	clip := image.Rect(left, top, W-right+1, top+ph+1)
	for _, s := range ss {
		for j := range s.xs {
			cx, cy := x(s.xs[j]), y(s.ys[j])
			if j > 0 {
				px, py := x(s.xs[j-1]), y(s.ys[j-1])
				for d := 0; d < s.width; d++ {
					clipLine(img, clip, px, py+d, cx, cy+d, s.c)
				}
			}
			if s.dots {
				for dx := -2; dx <= 2; dx++ {
					for dy := -2; dy <= 2; dy++ {
						if (image.Point{cx + dx, cy + dy}).In(clip) {
							img.SetRGBA(cx+dx, cy+dy, s.c)
						}
					}
				}
			}
		}
	}
	// Legend, top right, with each curve's last value.
	lw := 0
	for _, s := range ss {
		lw = max(lw, len(legendLabel(s)))
	}
	lx, ly := W-right-lw*7-44, top+8
	fill(img, image.Rect(lx-6, ly-4, W-right-4, ly+len(ss)*17+2), color.RGBA{255, 255, 255, 255})
	for i, s := range ss {
		yy := ly + i*17 + 8
		for d := 0; d < max(2, s.width); d++ {
			line(img, lx, yy+d, lx+24, yy+d, s.c)
		}
		text(img, lx+32, yy+5, legendLabel(s), ink)
	}
	return writeAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// smoothCentred smooths ys with a local straight-line fit: each point's
// value is a least-squares line through the points within h of it (fewer
// at the ends, where the window is cut off), evaluated at the point. In
// the middle of the curve that is the window's mean; at the ends the
// line's slope keeps the value from being pulled towards the window's
// centre. A trailing average such as an exponential moving average lags a
// falling loss and draws the early curve above every raw point; this has
// no lag on a straight stretch, so the smoothed curve runs through the
// raw points' middle from the first step to the last. O(len(ys)) with
// prefix sums.
func smoothCentred(ys []float64, h int) []float64 {
	n := len(ys)
	var sy, sx, sxx, sxy = make([]float64, n+1), make([]float64, n+1), make([]float64, n+1), make([]float64, n+1)
	for i, y := range ys {
		x := float64(i)
		sy[i+1], sx[i+1], sxx[i+1], sxy[i+1] = sy[i]+y, sx[i]+x, sxx[i]+x*x, sxy[i]+x*y
	}
	out := make([]float64, n)
	for i := range ys {
		a, b := max(0, i-h), min(n, i+h+1)
		m := float64(b - a)
		my, mx := (sy[b]-sy[a])/m, (sx[b]-sx[a])/m
		vxx := (sxx[b]-sxx[a])/m - mx*mx
		out[i] = my
		if vxx > 1e-9 {
			out[i] += ((sxy[b]-sxy[a])/m - mx*my) / vxx * (float64(i) - mx)
		}
	}
	return out
}

// legendLabel is a curve's name and last value.
func legendLabel(s series) string {
	if len(s.ys) == 0 {
		return s.name
	}
	return fmt.Sprintf("%s  %.3f", s.name, s.ys[len(s.ys)-1])
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if !(x > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

// decimals is how many decimals label a tick step.
func decimals(step float64) int {
	return max(0, int(math.Ceil(-math.Log10(step)+1e-9)))
}

// text draws s with its baseline at (x, y).
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			img.SetRGBA(xx, yy, c)
		}
	}
}

// clipLine draws the segment's points that fall inside clip.
func clipLine(img *image.RGBA, clip image.Rectangle, x0, y0, x1, y1 int, c color.RGBA) {
	sub := img.SubImage(clip).(*image.RGBA)
	line(sub, x0, y0, x1, y1, c)
}

// line draws a segment with Bresenham's algorithm (points outside img's
// bounds are not drawn).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
