package pipelines

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// mergeShardDirs makes dir an ordinary shard directory holding the shards of
// the finished shard directories tasks, in order: every shard is hard-linked
// (copied where links fail) under a renumbered name, stats are merged
// exactly, and the manifest is written last. dropped/ side outputs are
// merged the same way. Running it again gives the same files.
func mergeShardDirs(dir, fingerprint string, tasks []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mans := make([]*shards.Manifest, len(tasks))
	hasDropped := false
	for i, t := range tasks {
		m, err := shards.ReadManifest(t)
		if err != nil {
			return err
		}
		mans[i] = m
		if _, err := os.Stat(filepath.Join(t, shards.DroppedDir, shards.ManifestName)); err == nil {
			hasDropped = true
		}
	}
	// An older merge's manifest goes first, so a half-merged directory is
	// never taken for a finished one.
	if err := removeIfExists(filepath.Join(dir, shards.ManifestName)); err != nil {
		return err
	}
	merged, err := linkShards(dir, tasks, mans)
	if err != nil {
		return err
	}
	merged.Fingerprint = fingerprint
	if hasDropped {
		ddir := filepath.Join(dir, shards.DroppedDir)
		if err := os.MkdirAll(ddir, 0o755); err != nil {
			return err
		}
		dmans := make([]*shards.Manifest, 0, len(tasks))
		dtasks := make([]string, 0, len(tasks))
		for _, t := range tasks {
			td := filepath.Join(t, shards.DroppedDir)
			m, err := shards.ReadManifest(td)
			if err != nil {
				return err
			}
			dmans, dtasks = append(dmans, m), append(dtasks, td)
		}
		dm, err := linkShards(ddir, dtasks, dmans)
		if err != nil {
			return err
		}
		dm.Fingerprint = fingerprint
		if err := shards.WriteManifest(ddir, dm); err != nil {
			return err
		}
	}
	var st *shards.Stats
	for _, t := range tasks {
		s, err := shards.ReadStats(t)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if st == nil {
			st = shards.NewStats(s.Stage)
		}
		if err := st.Merge(s); err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
	}
	if st != nil {
		if err := shards.WriteStats(dir, st); err != nil {
			return err
		}
	}
	return shards.WriteManifest(dir, merged)
}

// linkShards links the shards of every task manifest into dir under
// renumbered names and returns the merged manifest (without fingerprint).
// Shard files in dir that the merge does not produce are removed.
func linkShards(dir string, tasks []string, mans []*shards.Manifest) (*shards.Manifest, error) {
	out := &shards.Manifest{Kind: mans[0].Kind, Stage: mans[0].Stage, Tokenizer: mans[0].Tokenizer, Shards: []shards.ShardInfo{}}
	want := map[string]bool{}
	next := map[string]int{}
	for i, m := range mans {
		if m.Kind != out.Kind {
			return nil, fmt.Errorf("%s holds %s shards, %s %s", tasks[i], m.Kind, tasks[0], out.Kind)
		}
		if (m.Tokenizer == nil) != (out.Tokenizer == nil) || (m.Tokenizer != nil && *m.Tokenizer != *out.Tokenizer) {
			return nil, fmt.Errorf("%s: tokenizer differs from %s's", tasks[i], tasks[0])
		}
		for _, s := range m.Shards {
			prefix := "part"
			if j := strings.LastIndexByte(s.Name, '-'); j > 0 {
				prefix = s.Name[:j]
			}
			name := shards.ShardName(prefix, next[prefix])
			next[prefix]++
			if err := linkFile(filepath.Join(tasks[i], s.Name), filepath.Join(dir, name)); err != nil {
				return nil, err
			}
			want[name] = true
			s.Name = name
			out.Shards = append(out.Shards, s)
		}
		for k, v := range m.Sources {
			if out.Sources == nil {
				out.Sources = map[string]shards.Totals{}
			}
			t := out.Sources[k]
			t.Rows += v.Rows
			t.Bytes += v.Bytes
			t.DataBytes += v.DataBytes
			t.Tokens += v.Tokens
			out.Sources[k] = t
		}
		out.Inputs = append(out.Inputs, m.Inputs...)
	}
	out.Totals = shards.SumShards(out.Shards)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".arrow") && !want[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// linkFile makes dst the same file as src: a hard link, or a copy written
// atomically where the file system has no links.
func linkFile(src, dst string) error {
	if a, err := os.Stat(src); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	if err := removeIfExists(dst); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := shards.CreateAtomic(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, in); err != nil {
		f.Abort()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return f.Commit()
}

// removeMerged removes what a merge wrote into a step directory, leaving
// the tasks' outputs.
func removeMerged(dir string) error {
	for _, d := range []string{dir, filepath.Join(dir, shards.DroppedDir)} {
		ents, err := os.ReadDir(d)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".arrow") || n == shards.ManifestName || n == shards.StatsName) {
				if err := os.Remove(filepath.Join(d, n)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
