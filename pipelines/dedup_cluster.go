package pipelines

import (
	"fmt"

	"github.com/smelt-dev/smelt/dedup"
	"github.com/smelt-dev/smelt/shards"
)

// The cluster step cut into partitions (dedup.steps.cluster.tasks N > 1):
//
//	dedup-cc-01 .. dedup-cc-RR  N tasks a group each: a round of connected
//	                            components (dedup.ComponentsTask); a round
//	                            after the components were found does nothing
//	dedup-join                  N tasks: each pair to its component's partition
//	dedup-decide                N tasks: the decisions of a partition's clusters
//	dedup-cluster               1 task: merges the results, writes the report,
//	                            commits to the store
//
// The route tasks read the decision files of every dedup-decide task of
// their group, merged: the output is byte-identical to the single cluster
// task's. Every task is an ordinary task of the executors (local pool,
// Slurm array), resumable like the others: its files are atomic and its
// marker is written last.

// DefaultClusterRounds is the components rounds a plan holds by default.
// Rounds run, the last finding its input already the stars: 4 on the
// synthetic 1M-document corpus, 4 on chains of near copies, 14 on paths of
// 300 documents in random order.
const DefaultClusterRounds = 16

const (
	stepDedupJoin   = "dedup-join"
	stepDedupDecide = "dedup-decide"
)

func ccStepName(round int) string { return fmt.Sprintf("dedup-cc-%02d", round) }

// clusterSteps plans the partitioned cluster step.
type clusterSteps struct {
	parts  int
	rounds []*Step
	join   *Step
	decide *Step
}

// newClusterSteps returns the steps of a partitioned cluster step between
// bk and cl (and makes cl need them), or nil for the single cluster task.
func newClusterSteps(d *Dedup, bk, cl *Step) *clusterSteps {
	n := d.Steps.Cluster.Tasks
	if n <= 1 {
		return nil
	}
	r := d.Steps.Cluster.Rounds
	if r <= 0 {
		r = DefaultClusterRounds
	}
	cs := &clusterSteps{parts: n}
	prev := bk.Name
	for i := 1; i <= r; i++ {
		s := &Step{Name: ccStepName(i), Kind: KindDedupComponents, Needs: []string{prev}}
		d.Steps.Cluster.apply(s)
		cs.rounds = append(cs.rounds, s)
		prev = s.Name
	}
	cs.join = &Step{Name: stepDedupJoin, Kind: KindDedupJoin, Needs: []string{prev}}
	cs.decide = &Step{Name: stepDedupDecide, Kind: KindDedupDecide, Needs: []string{cs.join.Name}}
	d.Steps.Cluster.apply(cs.join)
	d.Steps.Cluster.apply(cs.decide)
	cl.Needs = []string{cs.decide.Name}
	return cs
}

func (cs *clusterSteps) steps() []*Step {
	return append(append([]*Step(nil), cs.rounds...), cs.join, cs.decide)
}

// plan adds one group's tasks. The components and join tasks' work is a
// function of the bucket tasks' pairs and the partitions only.
func (cs *clusterSteps) plan(group string, opt dedup.Options, store string, gens []uint64, run string, bucketFPs []string) {
	for p := 0; p < cs.parts; p++ {
		for i, s := range cs.rounds {
			s.Tasks = append(s.Tasks, &Task{Rank: len(s.Tasks), Group: group, Part: p, Parts: cs.parts, Out: taskDir(s.Name, len(s.Tasks)),
				Fingerprint: hashJSON([]any{KindDedupComponents, i + 1, p, cs.parts, bucketFPs})})
		}
		j := cs.join
		j.Tasks = append(j.Tasks, &Task{Rank: len(j.Tasks), Group: group, Part: p, Parts: cs.parts, Out: taskDir(j.Name, len(j.Tasks)),
			Fingerprint: hashJSON([]any{KindDedupJoin, p, cs.parts, bucketFPs})})
		dc := cs.decide
		dc.Tasks = append(dc.Tasks, &Task{Rank: len(dc.Tasks), Group: group, Part: p, Parts: cs.parts, Out: taskDir(dc.Name, len(dc.Tasks)),
			Snapshot: gens, Run: run, Fingerprint: hashJSON([]any{KindDedupDecide, opt, store, gens, run, p, cs.parts, bucketFPs})})
	}
}

func registerClusterSteps(r *Registry) {
	r.Register(&StageDef{Kind: KindDedupComponents, Doc: "dedup, step 3 cut into dedup.steps.cluster.tasks partitions: one round of connected components over the pairs (large-star/small-star), a task per partition holding its documents' edges; rounds after the components are found do nothing",
		Run: runDedupComponents})
	r.Register(&StageDef{Kind: KindDedupJoin, Doc: "dedup, partitioned step 3: every pair of a partition sent to the partition of its component's smallest document",
		Run: runDedupJoin})
	r.Register(&StageDef{Kind: KindDedupDecide, Doc: "dedup, partitioned step 3: the survivors and decisions of one partition's clusters, per sketch task",
		Run: runDedupDecide})
}

// ccRound returns the round of a components step and the name of the
// step before it in the group's rounds ("" for round 1).
func ccRound(p *Plan, step *Step) (round int, prev string) {
	for _, s := range p.Steps {
		if s.Kind != KindDedupComponents {
			continue
		}
		round++
		if s.Name == step.Name {
			return round, prev
		}
		prev = s.Name
	}
	return 0, ""
}

func runDedupComponents(tc *TaskContext) (*shards.Stats, error) {
	round, prev := ccRound(tc.Run.Plan, tc.Step)
	if round == 0 {
		return nil, fmt.Errorf("dedup: %s is not a components round", tc.Step.Name)
	}
	buckets := tc.groupOuts("dedup-bucket")
	fp, err := dedup.ComponentsFingerprint(buckets, tc.Task.Parts)
	if err != nil {
		return nil, err
	}
	cfg := dedup.CCConfig{Round: round, Part: tc.Task.Part, Parts: tc.Task.Parts, Out: tc.path(tc.Task.Out), Fingerprint: fp}
	if round == 1 {
		cfg.Pairs = dedup.ComponentPairFiles(buckets)
	} else {
		cfg.Prev = tc.groupOuts(prev)
	}
	_, err = dedup.ComponentsTask(tc.Ctx, cfg)
	return nil, err
}

func runDedupJoin(tc *TaskContext) (*shards.Stats, error) {
	var rounds []*Step
	for _, s := range tc.Run.Plan.Steps {
		if s.Kind == KindDedupComponents {
			rounds = append(rounds, s)
		}
	}
	if len(rounds) == 0 {
		return nil, fmt.Errorf("dedup: no components rounds in the plan")
	}
	last := len(rounds)
	final, err := dedup.ComponentsFinalDirs(tc.groupOuts(rounds[last-1].Name), last)
	if err != nil {
		return nil, err
	}
	if final == 0 {
		return nil, fmt.Errorf("dedup: the components were not found in %d rounds: set dedup.steps.cluster.rounds to %d and run again (the rounds done are kept)", last, 2*last)
	}
	buckets := tc.groupOuts("dedup-bucket")
	fp, err := dedup.ComponentsFingerprint(buckets, tc.Task.Parts)
	if err != nil {
		return nil, err
	}
	return nil, dedup.ComponentsJoinTask(tc.Ctx, dedup.CCJoinConfig{Buckets: buckets, FinalDirs: tc.groupOuts(rounds[final-1].Name),
		Part: tc.Task.Part, Parts: tc.Task.Parts, Out: tc.path(tc.Task.Out), Fingerprint: fp})
}

func runDedupDecide(tc *TaskContext) (*shards.Stats, error) {
	opt := tc.Run.Recipe.Dedup.RunOptions()
	snap, release, err := tc.snapshot(opt)
	if err != nil {
		return nil, err
	}
	defer release()
	text, url := dedup.JoinedPairs(tc.groupOuts(stepDedupJoin), tc.Task.Part)
	_, err = dedup.ClusterTask(tc.Ctx, dedup.ClusterConfig{Sketches: tc.groupOuts("dedup-sketch"), Buckets: tc.groupOuts("dedup-bucket"),
		Snapshot: snap, Dir: tc.path(tc.Task.Out), Options: opt, TextPairs: text, URLPairs: url})
	return nil, err
}
