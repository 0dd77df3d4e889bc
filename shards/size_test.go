package shards

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShardBytes(t *testing.T) {
	for _, c := range []struct {
		mb   float64
		want int64
		err  string
	}{
		{64, 64 << 20, ""},
		{0.5, 1 << 19, ""},
		{MaxShardMB, MaxShardMB << 20, ""},
		{0, 0, "must be positive"},
		{-1, 0, "must be positive"},
		{1e-9, 0, "under one byte"},
		{99999999999999, 0, "at most"},
		{math.Inf(1), 0, "at most"},
		{math.NaN(), 0, "not a number"},
	} {
		got, err := ShardBytes(c.mb)
		if c.err == "" && (err != nil || got != c.want) {
			t.Errorf("ShardBytes(%v) = %d, %v; want %d", c.mb, got, err, c.want)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("ShardBytes(%v) = %d, %v; want an error containing %q", c.mb, got, err, c.err)
		}
	}
}

// TestStagesRefuseBadTargetBytes: a negative shard size (what --shard-mb -1
// became after the shift) or one that only an overflow could produce is an
// error, not a silent fall back to the default.
func TestStagesRefuseBadTargetBytes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	writeDocs(t, in, testDocs(3), DocWriterOptions{})
	huge := int64(99999999999999)
	for _, target := range []int64{-1 << 20, huge << 20, MaxShardMB<<20 + 1} {
		_, err := RunDocStage(context.Background(), DocStageConfig{Stage: "t", Inputs: []string{in}, Out: filepath.Join(dir, "out"), TargetBytes: target,
			Process: func(d *Document) (*Document, error) { return d, nil }})
		if err == nil || !strings.Contains(err.Error(), "shard size") {
			t.Errorf("RunDocStage with TargetBytes %d: %v", target, err)
		}
	}
}
