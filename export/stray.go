package export

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
)

// ownName matches the names a per-shard export gives its files
// (part-NNNNN.parquet, part-NNNNN.jsonl and its compressed forms).
var ownName = regexp.MustCompile(`^part-[0-9]{5,}\.(parquet|jsonl(\.[a-z0-9]+)?)$`)

// removeStrays runs when an export resumes: a file in out that matches the
// export's own naming but is not among the files its checkpoint records
// (a stray part-00099.parquet copied in, or left by another tool) would be
// read by a reader's part-*.parquet glob as if it were exported data, so it
// is removed, with a log line saying so. Files named otherwise are not
// this export's to delete: they are left, with a warning.
func removeStrays(out string, cp *checkpoint) error {
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	ours := map[string]bool{SidecarName: true, CheckpointName: true}
	for _, f := range cp.Files {
		ours[f.Name] = true
	}
	for name := range cp.Partials {
		ours[name] = true
	}
	for _, e := range ents {
		n := e.Name()
		if ours[n] || n[0] == '.' {
			continue
		}
		p := filepath.Join(out, n)
		if e.Type().IsRegular() && ownName.MatchString(n) {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("export: remove stray %s: %w", p, err)
			}
			slog.Info("export: resuming: removed a file this export did not write that matches its naming", "file", p)
			continue
		}
		slog.Warn("export: resuming: left a file this export did not write (not named like its outputs)", "file", p)
	}
	return nil
}
