package lineage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestRunDAG: every node runs once, after its dependencies finished, with
// at most the given number at once; an error stops nodes not yet started
// and is returned.
func TestRunDAG(t *testing.T) {
	var nodes []*dagNode
	for i := 0; i < 30; i++ {
		n := &dagNode{name: fmt.Sprint(i), prio: i % 3}
		if i >= 3 {
			n.deps = []string{fmt.Sprint(i / 3), fmt.Sprint(i - 1), "no such node"}
		}
		nodes = append(nodes, n)
	}
	var mu sync.Mutex
	done := map[string]bool{}
	running, most := 0, 0
	err := runDAG(context.Background(), nodes, 3, func(_ context.Context, n *dagNode) error {
		mu.Lock()
		defer mu.Unlock()
		if done[n.name] {
			t.Errorf("%s ran twice", n.name)
		}
		for _, d := range n.deps {
			if d != "no such node" && !done[d] {
				t.Errorf("%s ran before its dependency %s", n.name, d)
			}
		}
		running++
		most = max(most, running)
		mu.Unlock()
		mu.Lock()
		running--
		done[n.name] = true
		return nil
	})
	if err != nil || len(done) != len(nodes) || most > 3 {
		t.Fatalf("err %v, %d of %d ran, %d at once", err, len(done), len(nodes), most)
	}

	boom := errors.New("boom")
	ran := map[string]bool{}
	err = runDAG(context.Background(), nodes, 2, func(_ context.Context, n *dagNode) error {
		mu.Lock()
		defer mu.Unlock()
		ran[n.name] = true
		if n.name == "5" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || ran["6"] || ran["29"] {
		t.Fatalf("err %v, ran %v", err, ran)
	}
}
