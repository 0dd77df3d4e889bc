package dedup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/smelt-dev/smelt/shards"
)

// Connected components over partitioned pairs, in rounds of tasks.
//
// The algorithm is the alternation of "large-star" and "small-star" of
// Kiveris, Lattanzi, Mirrokni, Rastogi and Vassilvitskii, "Connected
// Components in MapReduce and Beyond" (SoCC 2014). The nodes are cut into
// Parts partitions by a hash of their reference; the task of partition p
// holds the adjacency of its nodes only (16 bytes a directed edge), so its
// memory is bounded by its partition's share of the pairs, not by the
// crawl. Odd rounds apply large-star (each node u links every neighbour
// larger than u to the smallest of u and its neighbours), even rounds
// small-star (each node u links itself and its neighbours not larger than u
// to the smallest of them). Both keep the components and end in a set of
// stars, one a component, centred on the component's smallest reference;
// a round whose input is already a set of stars changes nothing (every
// node is either a centre, all of whose neighbours are larger, or a leaf
// with exactly one, smaller, neighbour), and the rounds stop there. Each
// task writes one edge file per destination partition; round r+1's task p
// reads round r's files for p. Round 1 reads the bucket tasks' pair files
// (text and URL pairs: the components of their union, which are the
// reported clusters) and keeps the pairs with an end in its partition.
// The result, a function of the set of pairs only, is the same for any
// number of tasks: every node's label is the smallest reference of its
// component.

// ccDone is a component task's record, written last.
type ccDone struct {
	Round int `json:"round"`
	// InputStars says the round's input was already a set of stars in
	// this task's partition.
	InputStars bool `json:"input_stars"`
	// Final, if set, is the round whose output is the final set of
	// stars (the rounds stopped before this one).
	Final int `json:"final,omitempty"`
	// Edges read (directed, distinct) and written.
	EdgesIn  int64 `json:"edges_in"`
	EdgesOut int64 `json:"edges_out"`
	// Fingerprint is the task's CCConfig.Fingerprint.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// CCConfig is one task of the components step: round Round (from 1) of
// partition Part of Parts.
type CCConfig struct {
	// Pairs are the pair files (round 1 reads them; 16 bytes a pair).
	Pairs []string
	// Dir is the step's directory: the task writes Dir/rNNN/PPPPP.
	Dir                string
	Round, Part, Parts int
	// Out and Prev, if set, replace Dir's layout (a pipeline's task
	// directories): Out is this task's directory and Prev (rounds after
	// the first) the previous round's task directories, by partition.
	Out  string
	Prev []string
	// Fingerprint identifies the step's input (the pair files' content):
	// a record with another one, this task's or the previous round's, is
	// not of this run.
	Fingerprint string
}

func (cfg *CCConfig) out() string {
	if cfg.Out != "" {
		return cfg.Out
	}
	return ccTaskDir(cfg.Dir, cfg.Round, cfg.Part)
}

func (cfg *CCConfig) prev(q int) string {
	if cfg.Prev != nil {
		return cfg.Prev[q]
	}
	return ccTaskDir(cfg.Dir, cfg.Round-1, q)
}

func ccTaskDir(dir string, round, part int) string {
	return filepath.Join(dir, fmt.Sprintf("r%03d", round), fmt.Sprintf("%05d", part))
}

func ccEdgeFile(part int) string { return fmt.Sprintf("to-%05d.bin", part) }

// ccPart is the partition of a node: a mix of its reference's bits
// (splitmix64's finaliser), so that runs of references spread evenly.
func ccPart(r Ref, parts int) int {
	z := uint64(r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return int(z % uint64(parts))
}

func readCCDone(dir string) (*ccDone, error) {
	b, err := os.ReadFile(filepath.Join(dir, "done.json"))
	if err != nil {
		return nil, err
	}
	var d ccDone
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("dedup: %s: %w", dir, err)
	}
	return &d, nil
}

// ComponentsTask runs one task of the components step. A task whose
// round's input was a set of stars in every partition (or that comes after
// such a round) reads and writes no edges: it records the final round.
func ComponentsTask(ctx context.Context, cfg CCConfig) (*ccDone, error) {
	if cfg.Parts < 1 || cfg.Part < 0 || cfg.Part >= cfg.Parts || cfg.Round < 1 {
		return nil, fmt.Errorf("dedup: components task %d of %d, round %d: out of range", cfg.Part, cfg.Parts, cfg.Round)
	}
	if cfg.Prev != nil && len(cfg.Prev) != cfg.Parts {
		return nil, fmt.Errorf("dedup: components round %d: %d previous tasks for %d partitions", cfg.Round, len(cfg.Prev), cfg.Parts)
	}
	out := cfg.out()
	if d, err := readCCDone(out); err == nil && d.Round == cfg.Round && d.Fingerprint == cfg.Fingerprint {
		return d, nil // finished before
	}
	done := &ccDone{Round: cfg.Round, Fingerprint: cfg.Fingerprint}
	var edges []ccEdge
	if cfg.Round > 1 {
		stars := true
		for q := 0; q < cfg.Parts; q++ {
			d, err := readCCDone(cfg.prev(q))
			if err == nil && (d.Fingerprint != cfg.Fingerprint || d.Round != cfg.Round-1) {
				err = errors.New("it holds another run's record")
			}
			if err != nil {
				return nil, fmt.Errorf("dedup: components round %d task %d is not finished: %w", cfg.Round-1, q, err)
			}
			if d.Final > 0 {
				done.Final = d.Final
			}
			stars = stars && d.InputStars
		}
		if done.Final == 0 && stars {
			done.Final = cfg.Round - 1
		}
		if done.Final > 0 {
			return done, writeCCDone(out, done)
		}
		for q := 0; q < cfg.Parts; q++ {
			path := filepath.Join(cfg.prev(q), ccEdgeFile(cfg.Part))
			if err := readPairs(ctx, path, func(a, b Ref) { edges = appendEdge(edges, ccEdge{a, b}) }); err != nil {
				return nil, err
			}
		}
	} else {
		for _, path := range cfg.Pairs {
			if err := readPairs(ctx, path, func(a, b Ref) {
				if a == b {
					return
				}
				if ccPart(a, cfg.Parts) == cfg.Part {
					edges = appendEdge(edges, ccEdge{a, b})
				}
				if ccPart(b, cfg.Parts) == cfg.Part {
					edges = appendEdge(edges, ccEdge{b, a})
				}
			}); err != nil {
				return nil, err
			}
		}
	}
	edges = sortEdges(edges)
	done.EdgesIn = int64(len(edges))
	done.InputStars = true

	if err := os.RemoveAll(out); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	ws := make([]*pairWriter, cfg.Parts)
	defer func() {
		for _, w := range ws {
			if w != nil {
				w.abort()
			}
		}
	}()
	for q := range ws {
		w, err := newPairWriter(filepath.Join(out, ccEdgeFile(q)))
		if err != nil {
			return nil, err
		}
		ws[q] = w
	}
	// emit writes the undirected edge {a, b} to both ends' partitions.
	emit := func(a, b Ref) error {
		if a == b {
			return nil
		}
		done.EdgesOut++
		if err := ws[ccPart(a, cfg.Parts)].write(a, b); err != nil {
			return err
		}
		return ws[ccPart(b, cfg.Parts)].write(b, a)
	}
	large := cfg.Round%2 == 1
	for lo := 0; lo < len(edges); {
		if lo%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		u := edges[lo].u
		hi := lo
		for hi < len(edges) && edges[hi].u == u {
			hi++
		}
		nb := edges[lo:hi] // u's neighbours, ascending
		lo = hi
		m := min(u, nb[0].v)
		// A centre (every neighbour larger) or a leaf (one smaller
		// neighbour): otherwise the input is not yet a set of stars.
		if nb[0].v < u && len(nb) > 1 {
			done.InputStars = false
		}
		if large {
			for _, e := range nb {
				if e.v > u {
					if err := emit(e.v, m); err != nil {
						return nil, err
					}
				}
			}
			continue
		}
		for _, e := range nb {
			if e.v > u {
				break
			}
			if err := emit(e.v, m); err != nil {
				return nil, err
			}
		}
		if err := emit(u, m); err != nil {
			return nil, err
		}
	}
	for q, w := range ws {
		if err := w.commit(); err != nil {
			return nil, err
		}
		ws[q] = nil
	}
	return done, writeCCDone(out, done)
}

// cmpRef orders references as unsigned numbers (stored references, with
// the top bit set, come after this run's).
func cmpRef(a, b Ref) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type ccEdge struct{ u, v Ref }

// sortEdges sorts edges and removes repeats.
func sortEdges(edges []ccEdge) []ccEdge {
	slices.SortFunc(edges, func(x, y ccEdge) int {
		if x.u != y.u {
			return cmpRef(x.u, y.u)
		}
		return cmpRef(x.v, y.v)
	})
	return slices.Compact(edges)
}

// appendEdge appends e; when edges is full it first removes repeats (a
// pair is written once for every band that found it: on the 300,000
// document synthetic corpus, 1.9M directed pairs hold 395k distinct), and
// grows only when that frees less than a quarter, so that a task holds
// about its distinct edges.
func appendEdge(edges []ccEdge, e ccEdge) []ccEdge {
	if len(edges) == cap(edges) && len(edges) >= 1<<12 {
		edges = sortEdges(edges)
		if len(edges) >= cap(edges)*3/4 {
			edges = slices.Grow(edges, cap(edges))
		}
	}
	return append(edges, e)
}

func writeCCDone(dir string, d *ccDone) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	b, _ := json.Marshal(d)
	return shards.WriteFileAtomic(filepath.Join(dir, "done.json"), b)
}

// ComponentsFinal returns the round whose output holds the final stars,
// or 0 when round's tasks have not reached it.
func ComponentsFinal(dir string, round, parts int) (int, error) {
	dirs := make([]string, parts)
	for q := range dirs {
		dirs[q] = ccTaskDir(dir, round, q)
	}
	return ComponentsFinalDirs(dirs, round)
}

// ComponentsFinalDirs is ComponentsFinal over the task directories of
// round, by partition.
func ComponentsFinalDirs(dirs []string, round int) (int, error) {
	stars := true
	for q, dir := range dirs {
		d, err := readCCDone(dir)
		if err == nil && d.Round != round {
			err = fmt.Errorf("%s holds round %d", dir, d.Round)
		}
		if err != nil {
			return 0, fmt.Errorf("dedup: components round %d task %d is not finished: %w", round, q, err)
		}
		if d.Final > 0 {
			return d.Final, nil
		}
		stars = stars && d.InputStars
	}
	if stars {
		return round, nil
	}
	return 0, nil
}

// ComponentLabels calls f, in ascending order of node, with every node of
// partition part that is in a component with a smaller node and that
// component's smallest reference (its label). A node of a pair that f is
// not called with is the smallest of its component: its own label.
func ComponentLabels(ctx context.Context, dir string, final, part, parts int, f func(node, label Ref)) error {
	dirs := make([]string, parts)
	for q := range dirs {
		dirs[q] = ccTaskDir(dir, final, q)
	}
	return componentLabels(ctx, dirs, part, f)
}

// componentLabels is ComponentLabels over the final round's task
// directories, by partition.
func componentLabels(ctx context.Context, dirs []string, part int, f func(node, label Ref)) error {
	var edges []ccEdge
	for _, d := range dirs {
		path := filepath.Join(d, ccEdgeFile(part))
		if err := readPairs(ctx, path, func(a, b Ref) {
			if b < a {
				edges = append(edges, ccEdge{a, b})
			}
		}); err != nil {
			return err
		}
	}
	slices.SortFunc(edges, func(x, y ccEdge) int { return cmpRef(x.u, y.u) })
	edges = slices.Compact(edges)
	for i, e := range edges {
		if i > 0 && edges[i-1].u == e.u {
			return fmt.Errorf("dedup: components in %s: node %v has two centres", filepath.Dir(dirs[0]), e.u)
		}
		f(e.u, e.v)
	}
	return nil
}

// ErrComponentsRounds says the rounds ran out before the components were
// found.
var ErrComponentsRounds = errors.New("dedup: the components did not converge in the rounds given")

// Components runs the components step in this process: rounds of parts
// tasks (workers at a time) over the pair files until the stars are
// found, at most maxRounds (0 = 64) rounds. It returns the final round.
func Components(ctx context.Context, pairs []string, dir string, parts, workers, maxRounds int) (int, error) {
	return components(ctx, pairs, dir, parts, workers, maxRounds, "")
}

func components(ctx context.Context, pairs []string, dir string, parts, workers, maxRounds int, fp string) (int, error) {
	if maxRounds <= 0 {
		maxRounds = 64
	}
	if workers <= 0 {
		workers = 1
	}
	for r := 1; r <= maxRounds; r++ {
		if r > 1 {
			f, err := ComponentsFinal(dir, r-1, parts)
			if err != nil || f > 0 {
				return f, err
			}
		}
		sem := make(chan struct{}, workers)
		var wg sync.WaitGroup
		errs := make([]error, parts)
		for p := 0; p < parts; p++ {
			wg.Add(1)
			sem <- struct{}{}
			go func(p int) {
				defer wg.Done()
				defer func() { <-sem }()
				_, errs[p] = ComponentsTask(ctx, CCConfig{Pairs: pairs, Dir: dir, Round: r, Part: p, Parts: parts, Fingerprint: fp})
			}(p)
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
	}
	f, err := ComponentsFinal(dir, maxRounds, parts)
	if err == nil && f == 0 {
		err = fmt.Errorf("%w (%d)", ErrComponentsRounds, maxRounds)
	}
	return f, err
}

// ComponentPairFiles lists the pair files of finished bucket tasks: the
// components step's input.
func ComponentPairFiles(buckets []string) []string {
	var out []string
	for _, b := range buckets {
		out = append(out, filepath.Join(b, pairsFile), filepath.Join(b, urlPairsFile))
	}
	return out
}

// CCJoinConfig is one task of the join after the components: partition
// Part's pairs sent to the partition of their component's label, so that
// a decision task per partition receives every pair of its components and
// no other.
type CCJoinConfig struct {
	// Buckets are the bucket task directories (their text and URL pairs).
	Buckets []string
	// Dir is the components step's directory and Final its final round.
	Dir                string
	Final, Part, Parts int
	// FinalDirs, if set, replaces Dir and Final: the final round's task
	// directories, by partition.
	FinalDirs []string
	// Out receives text-QQQQQ.bin and url-QQQQQ.bin for every partition Q,
	// then join.json.
	Out string
	// Fingerprint identifies the input: a finished join with the same one
	// is not run again.
	Fingerprint string
}

const joinDone = "join.json"

// ComponentsJoinTask runs one join task. Its memory is its partition's
// labels (16 bytes a labelled document).
func ComponentsJoinTask(ctx context.Context, cfg CCJoinConfig) error {
	doneFile := filepath.Join(cfg.Out, joinDone)
	fpJSON, _ := json.Marshal(map[string]any{"fingerprint": cfg.Fingerprint, "part": cfg.Part, "parts": cfg.Parts})
	if b, err := os.ReadFile(doneFile); err == nil && string(b) == string(fpJSON) {
		return nil // finished before
	}
	_ = os.Remove(doneFile)
	dirs := cfg.FinalDirs
	if dirs == nil {
		dirs = make([]string, cfg.Parts)
		for q := range dirs {
			dirs[q] = ccTaskDir(cfg.Dir, cfg.Final, q)
		}
	}
	var labels []ccEdge
	if err := componentLabels(ctx, dirs, cfg.Part, func(n, l Ref) { labels = append(labels, ccEdge{n, l}) }); err != nil {
		return err
	}
	label := func(r Ref) Ref {
		i, ok := slices.BinarySearchFunc(labels, r, func(e ccEdge, r Ref) int { return cmpRef(e.u, r) })
		if ok {
			return labels[i].v
		}
		return r
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return fmt.Errorf("dedup: %w", err)
	}
	for _, kind := range []struct{ file, prefix string }{{pairsFile, "text"}, {urlPairsFile, "url"}} {
		ws := make([]*pairWriter, cfg.Parts)
		abort := func() {
			for _, w := range ws {
				if w != nil {
					w.abort()
				}
			}
		}
		for q := range ws {
			w, err := newPairWriter(filepath.Join(cfg.Out, fmt.Sprintf("%s-%05d.bin", kind.prefix, q)))
			if err != nil {
				abort()
				return err
			}
			ws[q] = w
		}
		var werr error
		for _, b := range cfg.Buckets {
			if err := readPairs(ctx, filepath.Join(b, kind.file), func(a, c Ref) {
				if werr == nil && ccPart(a, cfg.Parts) == cfg.Part {
					werr = ws[ccPart(label(a), cfg.Parts)].write(a, c)
				}
			}); err != nil {
				abort()
				return err
			}
			if werr != nil {
				abort()
				return werr
			}
		}
		for q, w := range ws {
			if err := w.commit(); err != nil {
				abort()
				return err
			}
			ws[q] = nil
		}
	}
	return shards.WriteFileAtomic(doneFile, fpJSON)
}

// JoinedPairs lists, for decision partition q, the text and URL pair
// files that the join tasks (directories joins) wrote for it.
func JoinedPairs(joins []string, q int) (text, url []string) {
	for _, j := range joins {
		text = append(text, filepath.Join(j, fmt.Sprintf("text-%05d.bin", q)))
		url = append(url, filepath.Join(j, fmt.Sprintf("url-%05d.bin", q)))
	}
	return text, url
}
