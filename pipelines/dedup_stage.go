package pipelines

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/shards"
)

// The dedup steps: a recipe's dedup runs as four steps of tasks, like the
// other stages, each bounded by its own settings and not by the crawl.
const (
	KindDedupSketch  = "dedup-sketch"
	KindDedupBucket  = "dedup-bucket"
	KindDedupCluster = "dedup-cluster"
	// KindDedup (the route step, "dedup") writes the kept documents.

	// The cluster step cut into dedup.steps.cluster.tasks partitions (see
	// dedup_cluster.go): the components in rounds, one step a round, then
	// the join and the decision tasks; KindDedupCluster then merges.
	KindDedupComponents = "dedup-components"
	KindDedupJoin       = "dedup-join"
	KindDedupDecide     = "dedup-decide"
)

// DedupSteps sets the tasks, CPUs and memory of the dedup steps. The
// sketch and route steps have one task per upstream task and the cluster
// step one per dedup group (all sources, or each source); the bucket step
// has Bucket.Tasks partitions of the key space. The output does not depend
// on any of these.
type DedupSteps struct {
	Sketch  StepResources `yaml:"sketch,omitempty" json:"sketch,omitzero"`
	Bucket  StepResources `yaml:"bucket,omitempty" json:"bucket,omitzero"`
	Cluster StepResources `yaml:"cluster,omitempty" json:"cluster,omitzero"`
	Route   StepResources `yaml:"route,omitempty" json:"route,omitzero"`
}

// StepResources are one step's settings.
type StepResources struct {
	// Tasks is the number of tasks: the bucket step's partitions (default
	// 4), or the cluster step's (default 1: the single cluster task; more
	// cuts it into components rounds, joins and decision tasks).
	Tasks int `yaml:"tasks,omitempty" json:"tasks,omitempty"`
	// Rounds (cluster step only, with tasks > 1) is how many components
	// rounds the plan holds (default 16); rounds after the components are
	// found do nothing.
	Rounds int `yaml:"rounds,omitempty" json:"rounds,omitempty"`
	// CPUs is each task's parallelism and Slurm --cpus-per-task.
	CPUs int `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	// Mem is each task's memory, such as 1GiB or 512MiB: Slurm's --mem, the
	// task's GOMEMLIMIT (3/4 of it) and what the sketch step buffers
	// (1/8 of it).
	Mem string `yaml:"mem,omitempty" json:"mem,omitempty"`
}

// DefaultBucketTasks is the bucket step's default number of tasks.
const DefaultBucketTasks = 4

// ParseMem parses a memory size: a number with an optional unit K, M, G,
// T (powers of 1024, with or without "iB" or "B").
func ParseMem(s string) (int64, error) {
	t := strings.TrimSpace(s)
	u := strings.TrimRight(strings.ToUpper(t), "IB")
	mult := int64(1)
	if n := len(u); n > 0 {
		switch u[n-1] {
		case 'K':
			mult, u = 1<<10, u[:n-1]
		case 'M':
			mult, u = 1<<20, u[:n-1]
		case 'G':
			mult, u = 1<<30, u[:n-1]
		case 'T':
			mult, u = 1<<40, u[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(u), 64)
	if err != nil || v <= 0 || v*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("memory %q: want a size such as 512MiB or 2GiB", s)
	}
	return int64(v * float64(mult)), nil
}

func (s *DedupSteps) validate() error {
	for _, st := range []struct {
		name string
		r    StepResources
	}{{"sketch", s.Sketch}, {"bucket", s.Bucket}, {"cluster", s.Cluster}, {"route", s.Route}} {
		if st.r.Tasks != 0 && st.name != "bucket" && st.name != "cluster" {
			return fmt.Errorf("recipe: dedup.steps.%s.tasks: only the bucket and cluster steps' tasks are set (sketch and route have one task per upstream task)", st.name)
		}
		if st.r.Tasks < 0 || st.r.Tasks > 1<<16 {
			return fmt.Errorf("recipe: dedup.steps.%s.tasks %d: want 1..65536", st.name, st.r.Tasks)
		}
		if st.name == "cluster" && st.r.Tasks > dedup.MaxClusterTasks {
			return fmt.Errorf("recipe: dedup.steps.cluster.tasks %d: want 1..%d", st.r.Tasks, dedup.MaxClusterTasks)
		}
		if st.r.Rounds != 0 && st.name != "cluster" {
			return fmt.Errorf("recipe: dedup.steps.%s.rounds: only the cluster step has rounds", st.name)
		}
		if st.r.Rounds < 0 || st.r.Rounds > 256 {
			return fmt.Errorf("recipe: dedup.steps.%s.rounds %d: want 2..256", st.name, st.r.Rounds)
		}
		if st.r.CPUs < 0 || st.r.CPUs > 4096 {
			return fmt.Errorf("recipe: dedup.steps.%s.cpus %d: want 1..4096", st.name, st.r.CPUs)
		}
		if st.r.Mem != "" {
			if _, err := ParseMem(st.r.Mem); err != nil {
				return fmt.Errorf("recipe: dedup.steps.%s.mem: %w", st.name, err)
			}
		}
	}
	return nil
}

func (r StepResources) apply(s *Step) {
	s.CPUs = r.CPUs
	if r.Mem != "" {
		s.MemBytes, _ = ParseMem(r.Mem)
	}
}

// planDedup cuts a recipe's dedup into its four steps. A group is what is
// deduplicated together: every mixed source (scope global) or each source.
// In a group, sketch task i and route task i read upstream task i (in
// recipe order), so every source's kept documents are in its own route
// tasks; the bucket tasks split the key space; one cluster task decides.
func planDedup(r *Recipe, d *Dedup, mixed []*Source, final map[string][]*Task, finalStep map[string]string, targetBytes int64) ([]*Step, error) {
	opt := d.RunOptions()
	parts := d.Steps.Bucket.Tasks
	if parts <= 0 {
		parts = DefaultBucketTasks
	}
	sk := &Step{Name: "dedup-sketch", Kind: KindDedupSketch}
	bk := &Step{Name: "dedup-bucket", Kind: KindDedupBucket, Needs: []string{sk.Name}}
	cl := &Step{Name: "dedup-cluster", Kind: KindDedupCluster, Needs: []string{bk.Name}}
	cs := newClusterSteps(d, bk, cl)
	rt := &Step{Name: "dedup", Kind: KindDedup, Merge: true, Needs: []string{cl.Name}}
	d.Steps.Sketch.apply(sk)
	d.Steps.Bucket.apply(bk)
	d.Steps.Cluster.apply(cl)
	d.Steps.Route.apply(rt)
	type group struct {
		name string
		srcs []*Source
	}
	var groups []group
	if d.Global() {
		groups = []group{{"", mixed}}
	} else {
		for _, s := range mixed {
			groups = append(groups, group{s.Name, []*Source{s}})
		}
	}
	routes := map[string][]*Task{}
	for _, g := range groups {
		type up struct {
			src  string
			task *Task
		}
		var ups []up
		var upFPs []string
		for _, s := range g.srcs {
			sk.Needs = appendUnique(sk.Needs, finalStep[s.Name])
			for _, u := range final[s.Name] {
				ups = append(ups, up{s.Name, u})
				upFPs = append(upFPs, u.Fingerprint)
			}
		}
		if len(ups) > dedup.MaxTasks {
			return nil, fmt.Errorf("dedup: %d upstream tasks in one group: at most %d", len(ups), dedup.MaxTasks)
		}
		store := d.StorePath(g.name)
		run := hashJSON([]any{"dedup-run", opt, g.name, upFPs})
		var gens []uint64
		if store != "" {
			var err error
			if gens, err = dedup.PlanSnapshot(store, opt, run); err != nil {
				return nil, err
			}
		}
		var sketchOuts, sketchFPs []string
		for i, u := range ups {
			t := &Task{Rank: len(sk.Tasks), Source: u.src, Group: g.name, Part: i, Parts: parts,
				Inputs: []string{u.task.Out}, Out: taskDir(sk.Name, len(sk.Tasks))}
			t.Fingerprint = hashJSON([]any{KindDedupSketch, opt, parts, i, u.task.Fingerprint})
			sk.Tasks = append(sk.Tasks, t)
			sketchOuts, sketchFPs = append(sketchOuts, t.Out), append(sketchFPs, t.Fingerprint)
		}
		var bucketFPs []string
		for p := 0; p < parts; p++ {
			t := &Task{Rank: len(bk.Tasks), Group: g.name, Part: p, Parts: parts, Inputs: sketchOuts,
				Out: taskDir(bk.Name, len(bk.Tasks)), Snapshot: gens}
			t.Fingerprint = hashJSON([]any{KindDedupBucket, opt, p, parts, store, gens, sketchFPs})
			bk.Tasks = append(bk.Tasks, t)
			bucketFPs = append(bucketFPs, t.Fingerprint)
		}
		ct := &Task{Rank: len(cl.Tasks), Group: g.name, Parts: parts, Out: taskDir(cl.Name, len(cl.Tasks)), Snapshot: gens, Run: run}
		for _, u := range ups {
			ct.Inputs = append(ct.Inputs, u.task.Out)
		}
		ct.Fingerprint = hashJSON([]any{KindDedupCluster, opt, store, gens, run, bucketFPs})
		if cs != nil {
			ct.Fingerprint = hashJSON([]any{KindDedupCluster, opt, store, gens, run, bucketFPs, cs.parts})
			cs.plan(g.name, opt, store, gens, run, bucketFPs)
		}
		cl.Tasks = append(cl.Tasks, ct)
		for i, u := range ups {
			// Not the cluster's fingerprint: the routing does not depend on
			// the number of bucket tasks, nor must the output's manifests.
			t := &Task{Rank: len(rt.Tasks), Source: u.src, Group: g.name, Part: i, Inputs: []string{u.task.Out},
				Out: taskDir(rt.Name, len(rt.Tasks))}
			t.Fingerprint = hashJSON([]any{KindDedup, opt, store, gens, run, targetBytes, i})
			rt.Tasks = append(rt.Tasks, t)
			routes[u.src] = append(routes[u.src], t)
		}
	}
	for _, s := range mixed {
		final[s.Name], finalStep[s.Name] = routes[s.Name], rt.Name
	}
	steps := []*Step{sk, bk}
	if cs != nil {
		steps = append(steps, cs.steps()...)
	}
	return append(steps, cl, rt), nil
}

// groupTasks returns the tasks of step that belong to group, in order.
func groupTasks(p *Plan, step, group string) []*Task {
	var out []*Task
	if s := p.Step(step); s != nil {
		for _, t := range s.Tasks {
			if t.Group == group {
				out = append(out, t)
			}
		}
	}
	return out
}

func (tc *TaskContext) groupOuts(step string) []string {
	var out []string
	for _, t := range groupTasks(tc.Run.Plan, step, tc.Task.Group) {
		out = append(out, tc.path(t.Out))
	}
	return out
}

// snapshot returns the task's store snapshot (nil without a store) and
// the release of its user lock.
func (tc *TaskContext) snapshot(opt dedup.Options) (*dedup.Snapshot, func(), error) {
	store := tc.Run.Recipe.Dedup.StorePath(tc.Task.Group)
	if store == "" {
		return nil, func() {}, nil
	}
	// Store maintenance (smelt dedup store rm|compact) leaves the files
	// alone while this task runs.
	release, err := dedup.UseStore(store)
	if err != nil {
		return nil, nil, err
	}
	run := tc.Task.Run
	if run == "" { // a bucket task: the group's cluster task knows
		if c := groupTasks(tc.Run.Plan, "dedup-cluster", tc.Task.Group); len(c) == 1 {
			run = c[0].Run
		}
	}
	snap, err := dedup.SnapshotAt(tc.Ctx, store, opt, run, tc.Task.Snapshot)
	if err != nil {
		release()
		return nil, nil, err
	}
	return snap, release, nil
}

func workersOf(tc *TaskContext) int {
	if tc.Step.CPUs > 0 && tc.Workers <= 0 {
		return tc.Step.CPUs
	}
	return tc.Workers
}

func runDedupSketch(tc *TaskContext) (*shards.Stats, error) {
	opt := tc.Run.Recipe.Dedup.RunOptions()
	buf := int64(0)
	if tc.Step.MemBytes > 0 {
		buf = tc.Step.MemBytes / 8
	}
	_, err := dedup.SketchTask(tc.Ctx, dedup.SketchConfig{Input: tc.inputs()[0], Task: tc.Task.Part, Dir: tc.path(tc.Task.Out),
		Options: opt, Parts: tc.Task.Parts, BufferBytes: buf, Workers: workersOf(tc), Progress: tc.progress})
	return nil, err
}

func runDedupBucket(tc *TaskContext) (*shards.Stats, error) {
	opt := tc.Run.Recipe.Dedup.RunOptions()
	snap, release, err := tc.snapshot(opt)
	if err != nil {
		return nil, err
	}
	defer release()
	_, err = dedup.BucketTask(tc.Ctx, dedup.BucketConfig{Sketches: tc.groupOuts("dedup-sketch"), Snapshot: snap,
		Part: tc.Task.Part, Parts: tc.Task.Parts, Dir: tc.path(tc.Task.Out), Options: opt})
	return nil, err
}

func runDedupCluster(tc *TaskContext) (*shards.Stats, error) {
	opt := tc.Run.Recipe.Dedup.RunOptions()
	snap, release, err := tc.snapshot(opt)
	if err != nil {
		return nil, err
	}
	defer release()
	sketches := tc.groupOuts("dedup-sketch")
	dir := tc.path(tc.Task.Out)
	decide := tc.groupOuts(stepDedupDecide) // a partitioned cluster step's decisions
	var res *dedup.Result
	if len(decide) > 0 {
		res, err = dedup.MergeClusterTasks(tc.Ctx, dedup.MergeConfig{Parts: decide, Snapshot: snap, Dir: dir})
	} else {
		decide = nil
		res, err = dedup.ClusterTask(tc.Ctx, dedup.ClusterConfig{Sketches: sketches, Buckets: tc.groupOuts("dedup-bucket"),
			Snapshot: snap, Dir: dir, Options: opt})
	}
	if err != nil {
		return nil, err
	}
	if err := dedup.WriteClusterReport(tc.Ctx, tc.inputs(), res, dir, 0, 0); err != nil {
		return nil, err
	}
	if snap != nil {
		if err := dedup.CommitDecisionFrom(tc.Ctx, snap, opt, sketches, dir, decide); err != nil {
			return nil, fmt.Errorf("%w: another run committed to the store after this run was planned: run smelt run again with --force to decide against it", err)
		}
	}
	return nil, nil
}

// runDedup is the route step: one upstream task's documents, kept or
// dropped by the group's decision.
func runDedup(tc *TaskContext) (*shards.Stats, error) {
	opt := tc.Run.Recipe.Dedup.RunOptions()
	cl := groupTasks(tc.Run.Plan, "dedup-cluster", tc.Task.Group)
	if len(cl) != 1 {
		return nil, fmt.Errorf("dedup: no cluster task for group %q", tc.Task.Group)
	}
	clusterDir := tc.path(cl[0].Out)
	out := tc.path(tc.Task.Out)
	st, err := dedup.RouteTask(tc.Ctx, dedup.RouteConfig{Inputs: tc.inputs(), Tasks: []int{tc.Task.Part}, ClusterDir: clusterDir,
		DecisionDirs: tc.groupOuts(stepDedupDecide), Out: out, Workers: workersOf(tc), TargetBytes: tc.Run.Recipe.ShardMB << 20,
		Options: opt, Progress: tc.progress})
	if err != nil {
		return nil, err
	}
	if tc.Task.Part == 0 {
		// The group's largest clusters, where smelt stats and the report
		// look for them (dedup/tasks/*/dedup_clusters.json).
		b, err := os.ReadFile(filepath.Join(clusterDir, dedup.ClustersName))
		if err != nil {
			return nil, fmt.Errorf("dedup: %w", err)
		}
		if err := shards.WriteFileAtomic(filepath.Join(out, dedup.ClustersName), b); err != nil {
			return nil, err
		}
	}
	return st, nil
}
