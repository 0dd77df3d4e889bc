package shards

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestOrderedMapKeepsOrder(t *testing.T) {
	for _, workers := range []int{1, 2, 7} {
		i := 0
		next := func() (int, bool, error) {
			if i == 1000 {
				return 0, false, nil
			}
			i++
			return i, true, nil
		}
		var got []int
		err := OrderedMap(context.Background(), workers, next, func(x int) int {
			for k := 0; k < (x*7919)%500; k++ { // uneven work
				_ = k * k
			}
			return x * x
		}, func(y int) error { got = append(got, y); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1000 {
			t.Fatalf("workers=%d: %d results", workers, len(got))
		}
		for k, y := range got {
			if y != (k+1)*(k+1) {
				t.Fatalf("workers=%d: result %d out of order", workers, k)
			}
		}
	}
}

func TestOrderedMapStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	i := 0
	next := func() (int, bool, error) { i++; return i, true, nil } // endless
	n := 0
	err := OrderedMap(context.Background(), 3, next, func(x int) int { return x },
		func(int) error {
			n++
			if n == 50 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
}

// TestOrderedMapReportsCancellation cancels while the producer is still
// queuing, after everything queued so far was emitted: OrderedMap must not
// return nil as if every item had been emitted.
func TestOrderedMapReportsCancellation(t *testing.T) {
	for trial := 0; trial < 200; trial++ {
		ctx, cancel := context.WithCancel(context.Background())
		var emitted atomic.Int64
		i := 0
		next := func() (int, bool, error) {
			if i == 50 {
				return 0, false, nil
			}
			i++
			if i == 10 {
				for emitted.Load() < 9 { // let the consumer drain the queue
					time.Sleep(10 * time.Microsecond)
				}
				cancel()
			}
			return i, true, nil
		}
		err := OrderedMap(ctx, 3, next, func(x int) int { return x }, func(int) error { emitted.Add(1); return nil })
		if err == nil && emitted.Load() < 50 {
			t.Fatalf("trial %d: nil error after emitting %d of 50 items", trial, emitted.Load())
		}
		cancel()
	}
}
