package shards

import (
	"context"
	"runtime"
	"sync"
)

// OrderedMap applies f to every item that next yields, on workers goroutines,
// and hands the results to emit in input order. Memory stays bounded: at most
// a few items per worker are in flight. next returns ok=false at the end; an
// error from next or emit stops the run and is returned. Per-item failures
// that the caller wants to count belong in the item or result type.
//
// Because emit sees results in input order, a stage's output does not depend
// on the number of workers.
func OrderedMap[I, O any](ctx context.Context, workers int, next func() (I, bool, error), f func(I) O, emit func(O) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers == 1 {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			it, ok, err := next()
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			if err := emit(f(it)); err != nil {
				return err
			}
		}
	}
	type job struct {
		in  I
		out chan O
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, workers)
	pending := make(chan chan O, 4*workers)
	var prodErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // producer: reads in order, queues work and the order of results
		defer wg.Done()
		defer close(jobs)
		defer close(pending)
		for {
			it, ok, err := next()
			if err != nil {
				prodErr = err
				return
			}
			if !ok {
				return
			}
			j := job{in: it, out: make(chan O, 1)}
			select {
			case pending <- j.out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.out <- f(j.in)
			}
		}()
	}
	var err error
	for out := range pending {
		var r O
		select {
		case r = <-out:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
		if err = emit(r); err != nil {
			break
		}
	}
	if err == nil {
		// The producer also stops quietly when the context is cancelled:
		// then the results ran out early, and the run is not complete.
		err = ctx.Err()
	}
	cancel()
	// Drain so the producer and workers can exit.
	go func() {
		for range pending {
		}
	}()
	wg.Wait()
	if err != nil {
		return err
	}
	return prodErr
}
