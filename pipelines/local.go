package pipelines

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"
)

// LocalOptions configure the local executor.
type LocalOptions struct {
	// Workers is the total parallelism (0 = all cores): a step runs up to
	// that many tasks at once, and a step with fewer tasks gives each task
	// the spare workers. Output does not depend on it.
	Workers int
	// OnStep, if set, is called when a step starts (with its pending task
	// count) and when it ends.
	OnStep func(step *Step, pending int, done bool, took time.Duration)
	// Progress, if set, receives a step's progress summed over its tasks.
	Progress func(step *Step, done, total int64)
}

// RunLocal runs every unfinished task of the plan in this process, step
// after step, with a worker pool, merging each step's outputs when its
// tasks are done. A failed task stops the run after the running tasks end;
// its error is recorded for smelt status and returned.
func (r *Run) RunLocal(ctx context.Context, opt LocalOptions) error {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	unlock, err := r.lock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, s := range r.Plan.Steps {
		pending := r.Pending(s)
		start := time.Now()
		if opt.OnStep != nil {
			opt.OnStep(s, len(pending), false, 0)
		}
		if len(pending) > 0 {
			if err := r.runStepLocal(ctx, s, pending, workers, opt); err != nil {
				return err
			}
		}
		if s.Merge {
			if err := r.MergeStep(s); err != nil {
				return err
			}
		}
		if opt.OnStep != nil {
			opt.OnStep(s, len(pending), true, time.Since(start))
		}
	}
	return nil
}

func (r *Run) runStepLocal(ctx context.Context, s *Step, pending []int, workers int, opt LocalOptions) error {
	conc := min(workers, len(pending))
	per := max(1, workers/conc)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu         sync.Mutex
		errs       []error
		done, tot  = make([]int64, len(s.Tasks)), make([]int64, len(s.Tasks))
		lastReport time.Time
	)
	report := func(rank int, d, t int64) {
		if opt.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done[rank], tot[rank] = d, t
		if now := time.Now(); now.Sub(lastReport) < 100*time.Millisecond && d < t {
			return
		} else {
			lastReport = now
		}
		// Tasks not started yet count as the average of those that
		// reported a total, so the step's total does not jump around.
		var sd, st int64
		known := 0
		for i := range done {
			sd += done[i]
			st += tot[i]
			if tot[i] > 0 {
				known++
			}
		}
		if known > 0 {
			st += st / int64(known) * int64(len(pending)-known)
		}
		opt.Progress(s, sd, st)
	}
	ranks := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rank := range ranks {
				err := r.RunTask(ctx, s.Name, rank, TaskOptions{Workers: per,
					Progress: func(d, t int64) { report(rank, d, t) }})
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					if !errors.Is(err, context.Canceled) {
						slog.Error("task failed", "step", s.Name, "rank", rank, "err", err)
					}
					cancel()
				}
			}
		}()
	}
feed:
	for _, rank := range pending {
		select {
		case ranks <- rank:
		case <-ctx.Done():
			break feed
		}
	}
	close(ranks)
	wg.Wait()
	if len(errs) > 0 {
		// The first error that is not the cancellation it caused.
		for _, e := range errs {
			if !errors.Is(e, context.Canceled) {
				return e
			}
		}
		return errs[0]
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("step %s: %w", s.Name, err)
	}
	return nil
}
