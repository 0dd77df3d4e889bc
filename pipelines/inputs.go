package pipelines

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/store"
)

// gomodScheme prefixes an input inside a Go module: gomod:MODULE/PATH-GLOB.
const gomodScheme = "gomod:"

// InputFile is one input file of a source with the identity that goes into
// fingerprints.
type InputFile struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	MTime int64  `json:"mtime_ns"`
	// Name is the file's identity when its base name is not unique among
	// the source's files (see ingest.UniqueNames); "" means the base name.
	Name string `json:"name,omitempty"`
	// url is the URL as given, credentials and all, when Path is its
	// redacted form (store.Redact); it is never written (plan.json holds
	// Path), so it lives only in the process that planned the run.
	url string
}

// Location is where the file is read from: the URL as given (with a
// presigned URL's credentials), or Path.
func (f InputFile) Location() string {
	if f.url != "" {
		return f.url
	}
	return f.Path
}

// redactedYAML is the resolved recipe as the run directory records it:
// every input URL without its credentials (store.Redact), so recipe.yaml
// and the recipe hash hold no secret and stay the same when a presigned
// URL is signed again.
func (r *Recipe) redactedYAML() ([]byte, error) {
	c := *r
	c.Sources = make([]*Source, len(r.Sources))
	for i, s := range r.Sources {
		if s == nil {
			continue
		}
		cs := *s
		cs.Inputs = make([]string, len(s.Inputs))
		for j, in := range s.Inputs {
			cs.Inputs[j] = store.Redact(in)
		}
		c.Sources[i] = &cs
	}
	return c.YAML()
}

// nameFiles gives files that share a base name within a source distinct
// names, computed over the whole source before it is split into tasks, so
// documents' ids do not depend on the split.
func nameFiles(files []InputFile) {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	for i, n := range ingest.UniqueNames(paths) {
		if n != filepath.Base(files[i].Path) {
			files[i].Name = n
		}
	}
}

// module is a module this binary (or the enclosing module) depends on.
type module struct{ Path, Version string }

var (
	depsOnce sync.Once
	deps     []module
)

// buildDeps lists the modules recorded in the binary's build info, or, when
// there are none (go test binaries, go run in some modes), those go list
// reports for the enclosing module.
func buildDeps() []module {
	depsOnce.Do(func() {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range bi.Deps {
				v := d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					v = d.Replace.Version
				}
				deps = append(deps, module{d.Path, v})
			}
		}
		if len(deps) > 0 {
			return
		}
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Version}}", "all").Output()
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 {
				deps = append(deps, module{f[0], f[1]})
			}
		}
	})
	return deps
}

var (
	modDirMu sync.Mutex
	modDirs  = map[string]string{}
)

// moduleDir returns the directory of module mod at version in the module
// cache, downloading it through the Go module proxy when it is missing.
func moduleDir(mod module) (string, error) {
	key := mod.Path + "@" + mod.Version
	modDirMu.Lock()
	defer modDirMu.Unlock()
	if d, ok := modDirs[key]; ok {
		return d, nil
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if cache := strings.TrimSpace(string(out)); cache != "" {
			d := filepath.Join(cache, escapeModulePath(mod.Path)+"@"+mod.Version)
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				modDirs[key] = d
				return d, nil
			}
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", key).Output()
	if err != nil {
		return "", fmt.Errorf("fetch %s (go mod download): %w; gomod: inputs need the Go toolchain and the module proxy", key, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: unexpected answer %q", key, out)
	}
	modDirs[key] = info.Dir
	return info.Dir, nil
}

// escapeModulePath applies the module cache's case encoding (!x for X).
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + 'a' - 'A')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// resolveGomod turns gomod:MODULE/PATH into a path inside the module's
// directory, for the module version this binary was built with.
func resolveGomod(in string) (string, error) {
	rest := strings.TrimPrefix(in, gomodScheme)
	var best module
	for _, m := range buildDeps() {
		if (rest == m.Path || strings.HasPrefix(rest, m.Path+"/")) && len(m.Path) > len(best.Path) {
			best = m
		}
	}
	if best.Path == "" {
		return "", fmt.Errorf("input %s: no module of this smelt build is a prefix of %q", in, rest)
	}
	dir, err := moduleDir(best)
	if err != nil {
		return "", fmt.Errorf("input %s: %w", in, err)
	}
	return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(strings.TrimPrefix(rest, best.Path), "/"))), nil
}

// ExpandSource lists a source's input files in order, with their sizes and
// modification times.
func ExpandSource(s *Source) ([]InputFile, error) {
	files, _, err := expandSource(s)
	return files, err
}

// expandSource is ExpandSource that also returns the entries of the
// source's input directories that were left out (dangling links, FIFOs,
// ...), which the source's first ingest task counts under their reasons.
func expandSource(s *Source) ([]InputFile, []ingest.SkippedInput, error) {
	args := make([]string, len(s.Inputs))
	for i, in := range s.Inputs {
		if strings.HasPrefix(in, gomodScheme) {
			p, err := resolveGomod(in)
			if err != nil {
				return nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
			}
			in = p
		}
		if _, err := os.Stat(in); err == nil && strings.ContainsAny(in, "*?[") {
			// An existing file whose name holds glob characters (real
			// page titles do): ingest.ExpandInputs would take it for a
			// pattern, so escape them.
			in = globEscape(in)
		}
		args[i] = in
	}
	files, skipped, err := ingest.ExpandInputsSkipped(context.Background(), args)
	if err != nil {
		return nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
	}
	// Local files and URLs alike (many remote ones at a time: a Common
	// Crawl paths list names about 90,000 objects).
	infos, err := store.StatMany(context.Background(), files)
	if err != nil {
		return nil, nil, fmt.Errorf("source %s: %w", s.Name, err)
	}
	out := make([]InputFile, len(files))
	for i, in := range infos {
		out[i] = InputFile{Path: store.Redact(in.Path), Bytes: max(in.Size, 0)}
		if out[i].Path != in.Path {
			out[i].url = in.Path
		}
		if !in.ModTime.IsZero() {
			out[i].MTime = in.ModTime.UnixNano()
		}
	}
	return out, skipped, nil
}

// splitFiles cuts files, in order, into task groups: n groups of about
// equal bytes when tasks > 0, else groups of about taskBytes each. The
// split depends only on the files and the recipe, never on workers.
func splitFiles(files []InputFile, tasks int, taskBytes int64) [][]InputFile {
	var total int64
	for _, f := range files {
		total += f.Bytes
	}
	if tasks <= 0 {
		tasks = int((total + taskBytes - 1) / max(taskBytes, 1))
	}
	tasks = max(1, min(tasks, len(files)))
	groups := make([][]InputFile, 0, tasks)
	var done int64
	start := 0
	for i, f := range files {
		done += f.Bytes
		left := len(files) - i - 1
		need := tasks - len(groups) - 1 // groups still to start after this one
		// Close the group when it reached its share of the bytes, or when
		// every remaining file must start a group of its own.
		if need > 0 && (done*int64(tasks) >= total*int64(len(groups)+1) || left == need) {
			groups = append(groups, files[start:i+1])
			start = i + 1
		}
	}
	groups = append(groups, files[start:])
	return groups
}

// globEscape escapes filepath.Match's special characters in a literal path.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune("*?[\\", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
