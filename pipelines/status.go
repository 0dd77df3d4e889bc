package pipelines

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Task states shown by Status.
const (
	StateDone    = "done"
	StateRunning = "running"
	StateFailed  = "failed"
	StatePending = "pending"
	// StateStale is a task that started on this host and whose process is
	// gone without a marker (killed): the next smelt run resumes it.
	StateStale = "interrupted"
)

// TaskStatus is one task's state.
type TaskStatus struct {
	Rank    int
	State   string
	Marker  *Marker
	Log     string
	Seconds float64
}

// StepStatus is one step's state.
type StepStatus struct {
	Step   *Step
	Tasks  []TaskStatus
	Merged bool
	Counts map[string]int
}

// Status reads the markers of every task of the run.
func (r *Run) Status() []StepStatus {
	host, _ := os.Hostname()
	var out []StepStatus
	for _, s := range r.Plan.Steps {
		ss := StepStatus{Step: s, Counts: map[string]int{}}
		for _, t := range s.Tasks {
			ts := TaskStatus{Rank: t.Rank, State: StatePending}
			if m, _ := r.readMarker(s.Name, t.Rank); m != nil && m.Fingerprint == t.Fingerprint {
				ts.State, ts.Marker, ts.Seconds = StateDone, m, m.Seconds
			} else if m, _ := readMarkerFile(r.markerPath(s.Name, t.Rank, runningExt)); m != nil {
				ts.State, ts.Marker = StateRunning, m
				ts.Seconds = time.Since(m.Start).Seconds()
				if m.Host == host && m.PID > 0 && !processAlive(m.PID) {
					ts.State = StateStale
				}
			} else if m, _ := readMarkerFile(r.markerPath(s.Name, t.Rank, failedExt)); m != nil {
				ts.State, ts.Marker, ts.Seconds = StateFailed, m, m.Seconds
			}
			if _, err := os.Stat(r.LogPath(s.Name, t.Rank)); err == nil {
				ts.Log = r.LogPath(s.Name, t.Rank)
			}
			ss.Counts[ts.State]++
			ss.Tasks = append(ss.Tasks, ts)
		}
		if m, _ := readMarkerFile(r.mergeMarker(s.Name)); m != nil && m.Fingerprint == s.Fingerprint {
			ss.Merged = true
		}
		out = append(out, ss)
	}
	return out
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// WriteStatus prints every step's tasks: a summary line per step, then the
// tasks that are not done (all of them with verbose), failures with their
// error and log.
func (r *Run) WriteStatus(w io.Writer, verbose bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "run %s (recipe %s)\n", r.Dir, r.Recipe.Name)
	fmt.Fprintln(tw, "STEP\tTASKS\tDONE\tRUNNING\tFAILED\tPENDING\tMERGED\tDOCS IN\tDOCS OUT\tSECONDS")
	var details []string
	for _, ss := range r.Status() {
		var in, outDocs int64
		var secs float64
		for _, t := range ss.Tasks {
			if t.State == StateDone && t.Marker != nil {
				in += t.Marker.In
				outDocs += t.Marker.Out
				secs += t.Seconds
			}
			show := verbose || t.State != StateDone
			if !show {
				continue
			}
			line := fmt.Sprintf("  %s/%d: %s", ss.Step.Name, t.Rank, t.State)
			switch t.State {
			case StateFailed:
				line += ": " + strings.TrimSpace(t.Marker.Error)
			case StateRunning, StateStale:
				line += fmt.Sprintf(" on %s pid %d for %.0fs", t.Marker.Host, t.Marker.PID, t.Seconds)
			case StateDone:
				line += fmt.Sprintf(" in %.1fs (%d in, %d out)", t.Seconds, t.Marker.In, t.Marker.Out)
			}
			if t.Log != "" && t.State != StateDone {
				line += " (log " + t.Log + ")"
			}
			details = append(details, line)
		}
		merged := "-"
		if ss.Step.Merge {
			merged = "no"
			if ss.Merged {
				merged = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%.1f\n", ss.Step.Name, len(ss.Tasks), ss.Counts[StateDone],
			ss.Counts[StateRunning]+ss.Counts[StateStale], ss.Counts[StateFailed], ss.Counts[StatePending], merged, in, outDocs, secs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, d := range details {
		if _, err := fmt.Fprintln(w, d); err != nil {
			return err
		}
	}
	return nil
}
