package report

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// Charts are drawn as inline SVG by the templates from the geometry
// computed here, so the report needs no script and no network.

// palette colours the series of a chart.
var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// Legend names one series.
type Legend struct {
	Name  string
	Color string
}

// HBarChart is a horizontal bar chart: one row per label, one bar per
// series in the row.
type HBarChart struct {
	ID     string
	Width  int
	Height int
	Legend []Legend
	Rows   []HBarRow
	// LabelW is the width of the label column.
	LabelW int
}

// HBarRow is one labelled row.
type HBarRow struct {
	Label  string
	Y      float64 // top of the row
	LabelX float64
	TextY  float64
	Bars   []HBar
}

// HBar is one bar.
type HBar struct {
	X, Y, W, H float64
	Color      string
	Title      string // tooltip
	Text       string // value printed after the bar
	TextX      float64
	TextY      float64
}

// NewHBarChart lays out rows of values (one value per series). format
// prints a value beside its bar.
func NewHBarChart(id string, series []string, labels []string, values [][]float64, format func(float64) string) *HBarChart {
	return newHBarChart(id, series, labels, values, format, false)
}

// NewHBarChartLog is NewHBarChart with bar lengths on a log scale
// (log(1+v)), for counts that span orders of magnitude: every non-zero
// value stays a readable bar, and the printed value gives the number.
func NewHBarChartLog(id string, series []string, labels []string, values [][]float64, format func(float64) string) *HBarChart {
	return newHBarChart(id, series, labels, values, format, true)
}

func newHBarChart(id string, series []string, labels []string, values [][]float64, format func(float64) string, logScale bool) *HBarChart {
	const width, barH, gap, valueW = 900, 14, 8, 110
	// The label column fits the longest label (11px text is about 6.5px a
	// character), within [120, 380].
	longest := 0
	for _, l := range labels {
		longest = max(longest, utf8.RuneCountInString(l))
	}
	labelW := min(380, max(120, int(6.5*float64(longest))+12))
	c := &HBarChart{ID: "chart-" + id, Width: width, LabelW: labelW}
	for i, s := range series {
		c.Legend = append(c.Legend, Legend{s, palette[i%len(palette)]})
	}
	maxV := 0.0
	for _, row := range values {
		for _, v := range row {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	plotW := float64(width - labelW - valueW)
	y := 24.0
	for i, l := range labels {
		row := HBarRow{Label: l, Y: y, LabelX: float64(labelW - 6), TextY: y + barH - 4}
		for j, v := range values[i] {
			w := plotW * v / maxV
			if logScale {
				w = plotW * math.Log1p(max(v, 0)) / math.Log1p(maxV)
			}
			if v > 0 && w < 1 {
				w = 1
			}
			by := y + float64(j*barH)
			row.Bars = append(row.Bars, HBar{X: float64(labelW), Y: by, W: w, H: barH - 2, Color: palette[j%len(palette)],
				Title: fmt.Sprintf("%s, %s: %s", l, series[j], format(v)), Text: format(v), TextX: float64(labelW) + w + 4, TextY: by + barH - 4})
		}
		c.Rows = append(c.Rows, row)
		y += float64(len(values[i])*barH + gap)
	}
	c.Height = int(y) + 4
	return c
}

// HistChart is a vertical histogram of one or more series, overlaid, with
// an optional line (a rate in [0, 1] on a right-hand axis).
type HistChart struct {
	ID            string
	Width, Height int
	Legend        []Legend
	Bars          []HBar
	XTicks        []Tick
	YTicks        []Tick
	Line          string // SVG points of the rate line
	LineColor     string
	LineName      string
	// Expected is a second, dashed rate line (the keep policy's
	// probability), drawn when set.
	Expected     string
	ExpectedName string
	Left, Right  float64
	Top, Bottom  float64
}

// Tick is an axis label.
type Tick struct {
	X, Y float64
	Text string
}

// NewHistChart draws bins [lo, hi) of each series side by side within
// each bin. rate, if not nil, is drawn as a line scaled 0..1 over the
// plot's height.
func NewHistChart(id string, lo, hi float64, series []string, counts [][]int64, rate []float64, rateName string) *HistChart {
	const width, height, left, right, top, bottom = 900, 300, 60, 50, 24, 40
	c := &HistChart{ID: "chart-" + id, Width: width, Height: height, Left: left, Right: width - right, Top: top, Bottom: height - bottom}
	for i, s := range series {
		c.Legend = append(c.Legend, Legend{s, palette[i%len(palette)]})
	}
	n := 0
	var maxC int64 = 1
	for _, cs := range counts {
		n = max(n, len(cs))
		for _, v := range cs {
			maxC = max(maxC, v)
		}
	}
	if n == 0 {
		return c
	}
	plotW, plotH := c.Right-c.Left, c.Bottom-c.Top
	binW := plotW / float64(n)
	barW := (binW - 2) / float64(len(counts))
	for s, cs := range counts {
		for i, v := range cs {
			h := plotH * float64(v) / float64(maxC)
			x0 := lo + (hi-lo)*float64(i)/float64(n)
			x1 := lo + (hi-lo)*float64(i+1)/float64(n)
			c.Bars = append(c.Bars, HBar{X: c.Left + binW*float64(i) + 1 + barW*float64(s), Y: c.Bottom - h, W: barW, H: h,
				Color: palette[s%len(palette)], Title: fmt.Sprintf("%s [%s, %s): %d", series[s], fmtNum(x0), fmtNum(x1), v)})
		}
	}
	step := max(1, n/10)
	for i := 0; i <= n; i += step {
		c.XTicks = append(c.XTicks, Tick{X: c.Left + binW*float64(i), Y: c.Bottom + 16, Text: fmtNum(lo + (hi-lo)*float64(i)/float64(n))})
	}
	for i := 0; i <= 4; i++ {
		v := float64(maxC) * float64(i) / 4
		c.YTicks = append(c.YTicks, Tick{X: c.Left - 6, Y: c.Bottom - plotH*float64(i)/4 + 4, Text: fmtNum(v)})
	}
	if rate != nil {
		c.LineColor, c.LineName = "#111111", rateName
		c.Line = c.ratePoints(rate, n)
	}
	return c
}

// ratePoints lays out one rate in [0, 1] per bin, skipping NaN.
func (c *HistChart) ratePoints(rate []float64, n int) string {
	binW, plotH := (c.Right-c.Left)/float64(n), c.Bottom-c.Top
	pts := ""
	for i, r := range rate {
		if math.IsNaN(r) {
			continue
		}
		pts += fmt.Sprintf("%.1f,%.1f ", c.Left+binW*(float64(i)+0.5), c.Bottom-plotH*r)
	}
	return pts
}

// SetExpected adds the dashed line of an expected rate per bin.
func (c *HistChart) SetExpected(name string, rate []float64) {
	c.ExpectedName, c.Expected = name, c.ratePoints(rate, len(rate))
	if c.LineColor == "" {
		c.LineColor = "#111111"
	}
}

// LineChart plots series of (x, y) points.
type LineChart struct {
	ID            string
	Width, Height int
	Legend        []Legend
	Lines         []Polyline
	XTicks        []Tick
	YTicks        []Tick
	Left, Right   float64
	Top, Bottom   float64
}

// Polyline is one series.
type Polyline struct {
	Name   string
	Color  string
	Points string
	Dots   []Tick // markers (Text is the tooltip)
}

// NewLineChart lays out series over shared axes; NaN values are skipped.
func NewLineChart(id string, names []string, xs [][]float64, ys [][]float64, dots []bool) *LineChart {
	const width, height, left, right, top, bottom = 900, 320, 60, 20, 24, 40
	c := &LineChart{ID: "chart-" + id, Width: width, Height: height, Left: left, Right: width - right, Top: top, Bottom: height - bottom}
	x0, x1, y0, y1 := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for s := range ys {
		for i, y := range ys[s] {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			x0, x1 = math.Min(x0, xs[s][i]), math.Max(x1, xs[s][i])
			y0, y1 = math.Min(y0, y), math.Max(y1, y)
		}
	}
	if math.IsInf(x0, 0) {
		return c
	}
	if x1 == x0 {
		x1 = x0 + 1
	}
	if y1-y0 < 1e-9 {
		y1 = y0 + 1
	}
	px := func(x float64) float64 { return c.Left + (c.Right-c.Left)*(x-x0)/(x1-x0) }
	py := func(y float64) float64 { return c.Bottom - (c.Bottom-c.Top)*(y-y0)/(y1-y0) }
	for s, name := range names {
		l := Polyline{Name: name, Color: palette[s%len(palette)]}
		for i, y := range ys[s] {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			l.Points += fmt.Sprintf("%.1f,%.1f ", px(xs[s][i]), py(y))
			if dots[s] {
				l.Dots = append(l.Dots, Tick{X: px(xs[s][i]), Y: py(y), Text: fmt.Sprintf("%s at step %s: %.4f", name, fmtNum(xs[s][i]), y)})
			}
		}
		c.Lines = append(c.Lines, l)
		c.Legend = append(c.Legend, Legend{name, l.Color})
	}
	for i := 0; i <= 5; i++ {
		x := x0 + (x1-x0)*float64(i)/5
		c.XTicks = append(c.XTicks, Tick{X: px(x), Y: c.Bottom + 16, Text: fmtNum(math.Round(x))})
		y := y0 + (y1-y0)*float64(i)/5
		c.YTicks = append(c.YTicks, Tick{X: c.Left - 6, Y: py(y) + 4, Text: strconv.FormatFloat(y, 'f', 3, 64)})
	}
	return c
}

// fmtNum prints a number compactly: integers without decimals, large
// ones with k/M/G suffixes.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 1, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v == math.Trunc(v):
		return strconv.FormatInt(int64(v), 10)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// humanBytes prints a byte count in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
