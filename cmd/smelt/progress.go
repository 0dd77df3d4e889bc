package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress shows how far a long job has got: a progress bar with records,
// MB/s and ETA on a terminal, and a plain log line every few seconds when
// stderr is not a terminal (CI, Slurm, pipes). Stage packages call it through
// a plain func, so they know nothing about terminals.
type progress struct {
	label    string
	unit     string // what done and total count: "bytes" (default) or e.g. "steps"
	bar      *progressbar.ProgressBar
	mu       sync.Mutex
	start    time.Time
	lastLog  time.Time
	every    time.Duration
	total    int64
	done     int64
	records  int64
	docs     int64
	finished bool
}

// newProgress starts reporting for a job of total bytes (0 when unknown).
func newProgress(w io.Writer, label string, total int64) *progress {
	return newProgressOf(w, label, total, "bytes")
}

// newProgressOf starts reporting for a job of total units (bytes, steps...).
func newProgressOf(w io.Writer, label string, total int64, unit string) *progress {
	p := &progress{label: label, unit: unit, start: time.Now(), lastLog: time.Now(), every: 5 * time.Second, total: total}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(label),
			progressbar.OptionShowBytes(unit == "bytes"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
			progressbar.OptionFullWidth(),
		)
	}
	return p
}

// update records that done bytes (of total) and records/documents are processed.
func (p *progress) update(done, records, docs int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.records, p.docs = done, records, docs
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%s %d records, %d docs", p.label, records, docs))
		_ = p.bar.Set64(done)
		return
	}
	if now := time.Now(); now.Sub(p.lastLog) >= p.every {
		p.lastLog = now
		p.log("progress")
	}
}

func (p *progress) log(msg string) {
	el := time.Since(p.start).Seconds()
	attrs := []any{"stage", p.label}
	if p.records > 0 || p.docs > 0 {
		attrs = append(attrs, "records", p.records, "docs", p.docs)
	}
	if p.unit == "" || p.unit == "bytes" {
		attrs = append(attrs, "MB", fmt.Sprintf("%.1f", float64(p.done)/1e6), "MB/s", fmt.Sprintf("%.2f", float64(p.done)/1e6/max(el, 1e-9)))
	} else {
		attrs = append(attrs, p.unit, p.done)
	}
	if p.total > 0 && p.done > 0 && p.done < p.total {
		attrs = append(attrs, "pct", fmt.Sprintf("%.1f", 100*float64(p.done)/float64(p.total)))
		// Before 1% of the job the rate is the start-up's (opening
		// inputs, the first page's extraction): an ETA from it read
		// "156h" for a job of a minute. None until then.
		if 100*p.done >= p.total {
			eta := time.Duration(el * float64(p.total-p.done) / float64(p.done) * float64(time.Second))
			attrs = append(attrs, "eta", eta.Round(time.Second).String())
		}
	}
	slog.Info(msg, attrs...)
}

// finish ends the bar or logs the final line. err is the job's result: a
// failed job is not reported as done (its error is what the user sees
// next), and its bar is left where it stopped instead of being filled.
func (p *progress) finish(err error) {
	if p == nil || p.finished {
		return
	}
	p.finished = true
	if err != nil {
		if p.bar != nil {
			_ = p.bar.Exit() // ends the bar's line
		}
		return
	}
	if p.records == 0 {
		return // nothing ran (the output was already complete)
	}
	if p.total > 0 {
		p.done = p.total
	}
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	p.log("done")
}
