package trainer

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
)

// PlotLoss draws the training loss (blue) and validation loss (orange, with
// dots at the evaluations) against the step as a PNG at path, written
// atomically. The y axis spans the losses seen, with light grid lines at
// each tenth of both ranges. The y axis is labelled with the lowest, middle
// and highest loss and the x axis with the last step, in a 3x5 pixel digit
// font; the full numbers are in log.csv.
func PlotLoss(path string, recs []Record) error {
	const W, H, margin = 800, 480, 30
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	maxStep := 1
	for _, r := range recs {
		for _, v := range []float64{r.Loss, r.ValLoss} {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
		maxStep = max(maxStep, r.Step)
	}
	if !finite(lo) {
		lo, hi = 0, 1
	}
	if hi-lo < 1e-9 {
		hi = lo + 1
	}
	x := func(step int) int { return margin + (W-2*margin)*step/maxStep }
	y := func(v float64) int { return H - margin - int(float64(H-2*margin)*(v-lo)/(hi-lo)) }
	grid := color.RGBA{225, 225, 225, 255}
	axis := color.RGBA{0, 0, 0, 255}
	for i := 0; i <= 10; i++ {
		gx := margin + (W-2*margin)*i/10
		gy := margin + (H-2*margin)*i/10
		line(img, gx, margin, gx, H-margin, grid)
		line(img, margin, gy, W-margin, gy, grid)
	}
	line(img, margin, H-margin, W-margin, H-margin, axis)
	line(img, margin, margin, margin, H-margin, axis)
	for _, v := range []float64{lo, (lo + hi) / 2, hi} {
		drawText(img, 2, y(v)-5, strconv.FormatFloat(v, 'f', 2, 64), axis)
	}
	last := strconv.Itoa(maxStep)
	drawText(img, W-margin-8*len(last)+2, H-margin+6, last, axis)
	drawText(img, margin+2, H-margin+6, "0", axis)
	train := color.RGBA{31, 119, 180, 255}
	val := color.RGBA{255, 127, 14, 255}
	px, py, vx, vy := -1, 0, -1, 0
	for _, r := range recs {
		if finite(r.Loss) {
			cx, cy := x(r.Step), y(r.Loss)
			if px >= 0 {
				line(img, px, py, cx, cy, train)
			}
			px, py = cx, cy
		}
		if finite(r.ValLoss) {
			cx, cy := x(r.Step), y(r.ValLoss)
			if vx >= 0 {
				line(img, vx, vy, cx, cy, val)
			}
			for dx := -2; dx <= 2; dx++ {
				for dy := -2; dy <= 2; dy++ {
					img.Set(cx+dx, cy+dy, val)
				}
			}
			vx, vy = cx, cy
		}
	}
	return writeAtomic(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// line draws a segment with Bresenham's algorithm.
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

// digits is a 3x5 pixel font for 0-9 and '.', one row of 3 bits per line.
var digits = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
}

// drawText writes s at (x, y) in the digit font at twice its size.
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g, ok := digits[r]
		if !ok {
			x += 8
			continue
		}
		for row, bits := range g {
			for col := range 3 {
				if bits&(4>>col) != 0 {
					for d := range 4 {
						img.SetRGBA(x+2*col+d%2, y+2*row+d/2, c)
					}
				}
			}
		}
		x += 8
	}
}
