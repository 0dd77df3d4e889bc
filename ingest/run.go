package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smelt-dev/smelt/shards"
)

// Options configure Run. The zero value ingests with format detection, all
// cores and the default shard size.
type Options struct {
	// Source names the dataset in every document (default "web").
	Source string
	// Format forces a format for every input ("" or FormatAuto detects).
	Format Format
	// Workers convert records in parallel (0 = all cores). Output does not
	// depend on it.
	Workers int
	// TargetBytes is the shard size (0 = shards.DefaultTargetBytes).
	TargetBytes int64
	// Strict stops the run at the first broken record or input.
	Strict bool
	// Reader options passed to every input reader.
	Reader ReaderOptions
	// Progress, if set, is called in input order after every record.
	Progress func(Progress)
	// Names, if set, holds one name per input file (parallel to the files
	// given to Run): the identity of one-document-per-file inputs (HTML and
	// text files), from which their ids are made. Default: UniqueNames of
	// the files. A caller that splits one source's files over several runs
	// passes UniqueNames of the whole source, so ids do not depend on the
	// split.
	Names []string
	// LangID, if set, identifies languages instead of whatlanggo (e.g.
	// fastText's lid.176, see fasttext.LangID).
	LangID LangDetector
	// Skipped lists the entries of input directories that were left out
	// (from ExpandInputsSkipped): each is counted under its reason.
	Skipped []SkippedInput
}

// Progress reports how far a run has got.
type Progress struct {
	File, Files        int   // current input (1-based) and number of inputs
	Records, Documents int64 // records read and documents written so far
	Bytes, TotalBytes  int64 // input bytes done (approximate within a file) and in all
}

// Error kinds the runner itself counts, besides the readers' kinds.
const (
	ErrUnreadableInput = "input/unreadable"
	ErrReadInput       = "input/read"
)

// Reasons for leaving an entry of an input directory out (counted by Run
// when given in Options.Skipped).
const (
	SkipInputDangling   = "input/dangling-link"
	SkipInputDirLink    = "input/link-to-directory"
	SkipInputNotRegular = "input/not-regular-file"
)

// SkippedInput is an entry of an input directory that is not read.
type SkippedInput struct {
	Path   string `json:"path"`
	Reason string `json:"reason"` // one of the SkipInput* reasons
	Detail string `json:"detail,omitempty"`
}

// ExpandInputs is ExpandInputsSkipped that logs what it leaves out.
func ExpandInputs(ctx context.Context, args []string) ([]string, error) {
	files, skipped, err := ExpandInputsSkipped(ctx, args)
	for _, s := range skipped {
		slog.Warn("input left out", "path", s.Path, "reason", s.Reason, "detail", s.Detail)
	}
	return files, err
}

// ExpandInputsSkipped turns command-line inputs (files, directories,
// globs, "-" for standard input) into a list of files, and the entries of
// input directories it leaves out, with the reason. Directories are
// walked recursively in sorted order; hidden entries are left out;
// symbolic links to files are followed, while dangling links, links to
// directories (which could loop) and FIFOs, sockets and devices found in a
// directory are left out. A pipe or device named as an input is read as a
// stream (see IsStream). It fails if an input matches nothing. URLs are
// listed and stated with ctx (its store.Policy).
func ExpandInputsSkipped(ctx context.Context, args []string) ([]string, []SkippedInput, error) {
	seen := map[string]bool{}
	var files []string
	var skipped []SkippedInput
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
		}
	}
	for _, arg := range args {
		if arg == StdinName {
			add(arg)
			continue
		}
		if remote, ok, err := expandRemote(ctx, arg); ok {
			if err != nil {
				return nil, nil, err
			}
			for _, p := range remote {
				add(p)
			}
			continue
		}
		matches := []string{arg}
		// A name that exists is taken literally, even with glob characters
		// in it (real page titles contain '[').
		if _, err := os.Stat(arg); err != nil && strings.ContainsAny(arg, "*?[") {
			m, err := filepath.Glob(arg)
			if err != nil {
				return nil, nil, fmt.Errorf("input %q: %w", arg, err)
			}
			if len(m) == 0 {
				return nil, nil, fmt.Errorf("input %q matches no file", arg)
			}
			matches = m
		}
		for _, p := range matches {
			info, err := os.Stat(p)
			if err != nil {
				return nil, nil, fmt.Errorf("input: %w", err)
			}
			if !info.IsDir() {
				add(p) // a regular file, or a stream named on purpose
				continue
			}
			var inDir []string
			err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if q != p && strings.HasPrefix(d.Name(), ".") {
					if d.IsDir() {
						return filepath.SkipDir
					}
					return nil
				}
				switch t := d.Type(); {
				case t.IsRegular():
					inDir = append(inDir, q)
				case t&fs.ModeSymlink != 0:
					target, err := os.Stat(q)
					switch {
					case err != nil:
						skipped = append(skipped, SkippedInput{Path: q, Reason: SkipInputDangling, Detail: err.Error()})
					case target.Mode().IsRegular():
						inDir = append(inDir, q)
					case target.IsDir():
						skipped = append(skipped, SkippedInput{Path: q, Reason: SkipInputDirLink})
					default:
						skipped = append(skipped, SkippedInput{Path: q, Reason: SkipInputNotRegular, Detail: target.Mode().Type().String()})
					}
				case !d.IsDir():
					skipped = append(skipped, SkippedInput{Path: q, Reason: SkipInputNotRegular, Detail: t.String()})
				}
				return nil
			})
			if err != nil {
				return nil, nil, fmt.Errorf("input %s: %w", p, err)
			}
			if len(inDir) == 0 {
				return nil, nil, fmt.Errorf("input directory %s has no files", p)
			}
			sort.Strings(inDir)
			for _, q := range inDir {
				add(q)
			}
		}
	}
	if len(files) == 0 {
		return nil, nil, errors.New("no inputs")
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i].Path < skipped[j].Path })
	return files, skipped, nil
}

// position is where a checkpointed ingest run stopped: inputs before File
// are done, and Items items of input File were consumed.
type position struct {
	File   int                `json:"file"`
	Items  int64              `json:"items"`
	Inputs []shards.InputInfo `json:"inputs"`
	// Incidents counts, per input, the errors that are not records (see
	// IsIncident), for the accounting check.
	Incidents []int64 `json:"incidents,omitempty"`
}

// item is one thing read from an input: a record, or a counted error.
type item struct {
	file  int
	meta  *shards.InputInfo // identity of the input: path, bytes, sha256, format
	rec   *Record
	kind  string // error kind when err != nil
	err   error
	bytes int64
	off   int64
	// eof marks the end of an input, after its last item: framed is the
	// number of record units its reader framed (-1: unknown), ferr a
	// disagreement of its framing layers.
	eof    bool
	framed int64
	ferr   error
}

type result struct {
	item
	doc  *shards.Document
	skip string
	// cancelled: the run was stopped before the record was converted.
	cancelled bool
}

// testHookReader, when set by a test, wraps every reader Run opens (fault
// injection between the reader and the stats).
var testHookReader func(RecordReader) RecordReader

// Run ingests files into document shards in out, and returns the stats.
// Every record ends up as a document or counted under a skip reason or an
// error kind. The output depends only on the inputs and options (not on
// Workers), and a run killed at any point resumes, when started again with
// the same arguments, to the same bytes.
func Run(ctx context.Context, files []string, out string, opt Options) (*shards.Stats, error) {
	if opt.Source == "" {
		opt.Source = "web"
	}
	if opt.Format == "" {
		opt.Format = FormatAuto
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	unlock, err := shards.LockOutput(out) // one writer per output directory
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	defer unlock()
	var ids []any
	before := make([]int64, len(files)+1) // before[i]: bytes of the inputs before i
	for i, f := range files {
		if IsStream(f) {
			// A stream has no size or time to identify it by.
			before[i+1] = before[i]
			ids = append(ids, []any{f, "stream"})
			continue
		}
		size, mtime, err := statInput(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		// A size a server did not say (-1) counts as 0 for progress.
		before[i+1] = before[i] + max(size, 0)
		// A URL's identity is its redacted form: signing it again (a new
		// presigned URL for the same object) is the same input.
		ids = append(ids, []any{redactInput(f), size, mtime})
	}
	if opt.LangID != nil {
		ids = append(ids, "langid:"+opt.LangID.Name())
	}
	fp, err := shards.Fingerprint("ingest", struct {
		Source  string         `json:"source"`
		Format  Format         `json:"format"`
		Target  int64          `json:"target"`
		Reader  ReaderOptions  `json:"reader"`
		Names   []string       `json:"names,omitempty"`
		Skipped []SkippedInput `json:"skipped,omitempty"`
	}{opt.Source, opt.Format, opt.TargetBytes, opt.Reader, opt.Names, opt.Skipped}, ids...)
	if err != nil {
		return nil, err
	}
	if m, err := shards.ReadManifest(out); err == nil {
		if m.Fingerprint == fp {
			slog.Info("output already complete", "out", out)
			return shards.ReadStats(out)
		}
		return nil, fmt.Errorf("%s holds the finished output of a different ingest run (other inputs or options): choose a new --out or remove it", out)
	}

	st := shards.NewStats("ingest")
	st.Declare(append(append([]string(nil), SkipReasons...), SkipInputDangling, SkipInputDirLink, SkipInputNotRegular),
		append(append([]string(nil), ErrorKinds...), ErrUnreadableInput, ErrReadInput))
	for _, s := range opt.Skipped {
		st.In.Add(0)
		st.Drop(s.Reason, 0)
		slog.Warn("input left out", "path", s.Path, "reason", s.Reason, "detail", s.Detail)
	}
	pos := position{Inputs: make([]shards.InputInfo, len(files)), Incidents: make([]int64, len(files))}
	var prev []shards.ShardInfo
	cp, err := shards.LoadCheckpoint(out)
	if err != nil {
		return nil, err
	}
	if cp != nil {
		if cp.Fingerprint != fp {
			return nil, fmt.Errorf("%s holds an unfinished ingest run with other inputs or options: choose a new --out or remove it", out)
		}
		if err := json.Unmarshal(cp.Position, &pos); err != nil || len(pos.Inputs) != len(files) {
			return nil, fmt.Errorf("%s: unreadable checkpoint position: %v", out, err)
		}
		if len(pos.Incidents) != len(files) {
			pos.Incidents = make([]int64, len(files))
		}
		st, prev = cp.Stats, cp.Outputs["kept"]
		slog.Info("resuming", "out", out, "input", pos.File+1, "of", len(files), "records_done", st.In.Docs)
	}
	if err := shards.PruneShards(out, "part", prev); err != nil {
		return nil, err
	}
	w := shards.NewDocWriter(out, shards.DocWriterOptions{TargetBytes: opt.TargetBytes, FirstIndex: len(prev), Manual: true})
	defer w.Abort()

	names := opt.Names
	if names == nil {
		names = UniqueNames(files)
	} else if len(names) != len(files) {
		return nil, fmt.Errorf("ingest: %d names for %d inputs", len(names), len(files))
	}

	// Retryable failures of remote reads, however the readers report them.
	sink := &failureSink{}
	ctx = context.WithValue(ctx, sinkKey{}, sink)
	// The reading side: one input at a time, in order.
	var (
		cur     RecordReader
		base    RecordReader      // cur before any test hook
		meta    *shards.InputInfo // the current input's identity
		curFile = pos.File
		skip    = pos.Items // items of curFile consumed before the checkpoint
		opened  bool
	)
	nextFile := func() { curFile++; opened = false }
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	nextItem := func() (item, bool, error) {
		for {
			if curFile >= len(files) {
				return item{}, false, nil
			}
			path := files[curFile]
			if !opened {
				opened = true
				// The reading side describes the input in a fresh struct
				// that travels with its items; only emit, on the
				// consuming side, writes pos.
				meta = &shards.InputInfo{Path: redactInput(path)}
				fail := func(kind string, err error) (item, bool, error) {
					if retryable(err) {
						return item{}, false, retryError(path, err)
					}
					return item{file: curFile, meta: meta, kind: kind, err: err}, true, nil
				}
				if !IsStream(path) {
					size, _, err := statInput(ctx, path)
					if err != nil {
						return fail(ErrUnreadableInput, fmt.Errorf("%s: %w", redactInput(path), err))
					}
					meta.Bytes = size
					if size == 0 {
						return fail(ErrEmptyFile, fmt.Errorf("%s: empty file", redactInput(path)))
					}
					if meta.SHA256, err = inputSHA256(path); err != nil {
						return fail(ErrUnreadableInput, err)
					}
				}
				var format Format
				var err error
				cur, format, err = openFormat(ctx, path, opt.Format, opt.Reader)
				if ferr := sink.failed(); ferr != nil {
					if cur != nil {
						cur.Close()
						cur = nil
					}
					return item{}, false, retryError(path, ferr)
				}
				if err != nil {
					cur = nil
					var ce *ConfigError
					if errors.As(err, &ce) {
						return item{}, false, fmt.Errorf("ingest: %w", err)
					}
					return fail(ErrUnreadableInput, fmt.Errorf("%s: %w", redactInput(path), err))
				}
				meta.Format = string(format)
				base = cur
				if testHookReader != nil {
					cur = testHookReader(cur)
				}
			}
			if cur == nil { // this input produced its one error item
				nextFile()
				continue
			}
			rec, err := cur.Next()
			if ferr := sink.failed(); ferr != nil {
				return item{}, false, retryError(path, ferr)
			}
			if errors.Is(err, io.EOF) {
				it := item{file: curFile, meta: meta, eof: true, framed: -1}
				if fr, ok := base.(framer); ok {
					it.framed, it.ferr = fr.framing()
				}
				cur.Close()
				cur = nil
				nextFile()
				return it, true, nil
			}
			it := item{file: curFile, meta: meta, rec: rec}
			if err != nil && retryable(err) {
				return item{}, false, retryError(path, err)
			}
			if err != nil {
				var re *RecordError
				if errors.As(err, &re) {
					it = item{file: curFile, meta: meta, kind: re.Kind, err: err, off: re.Offset}
				} else {
					// An I/O error we cannot step over: count it and go
					// on with the next input.
					it = item{file: curFile, meta: meta, kind: ErrReadInput, err: fmt.Errorf("%s: %w", redactInput(path), err)}
					cur.Close()
					cur = nil
				}
			} else {
				it.bytes, it.off = recordBytes(rec), rec.Offset
				if rec.KeyFromPosition {
					// "line N" repeats across the files of a source: the
					// file's name (unique over the source) makes it unique.
					rec.Key = names[curFile] + "/" + rec.Key
				}
				if rec.Key == filepath.Base(redactInput(path)) && (meta.Format == string(FormatHTML) || meta.Format == string(FormatText)) {
					// One document per file: its identity is its name,
					// made unique among this run's inputs.
					rec.Key = names[curFile]
				}
			}
			return it, true, nil
		}
	}
	next := func() (item, bool, error) {
		for {
			it, ok, err := nextItem()
			if !ok || err != nil {
				return it, ok, err
			}
			if skip > 0 && !it.eof { // resuming: these were consumed before the checkpoint
				skip--
				continue
			}
			return it, true, nil
		}
	}
	convert := func(it item) result {
		r := result{item: it}
		if it.err != nil || it.eof {
			return r
		}
		if it.rec.Skip != "" {
			r.skip = it.rec.Skip
			return r
		}
		it.rec.LangID = opt.LangID
		it.rec.MaxHTML, it.rec.ExtractTimeout = opt.Reader.MaxHTMLBytes, opt.Reader.ExtractTimeout
		doc, skip, err := ConvertContext(ctx, it.rec, opt.Source)
		if err != nil && ctx.Err() != nil {
			r.err, r.cancelled = err, true
			return r
		}
		if err != nil {
			r.err, r.kind = err, ErrReadInput
			var re *RecordError
			if errors.As(err, &re) {
				r.kind = re.Kind
			}
			return r
		}
		r.doc, r.skip = doc, skip
		return r
	}
	var records, docs int64 = st.In.Docs, st.Out.Docs
	emit := func(r result) error {
		if r.cancelled {
			return r.err
		}
		info := &pos.Inputs[r.file]
		info.Path, info.Bytes, info.SHA256, info.Format = r.meta.Path, r.meta.Bytes, r.meta.SHA256, r.meta.Format
		if r.eof {
			// The accounting check: the records this input's reader framed
			// as it read are the records accounted for, one each.
			if r.ferr != nil {
				return fmt.Errorf("ingest: accounting: %w", r.ferr)
			}
			if got := info.Records - pos.Incidents[r.file]; r.framed >= 0 && got != r.framed {
				return fmt.Errorf("ingest: accounting: %s: its reader framed %d records but %d were accounted for (documents, skips and record errors)",
					info.Path, r.framed, got)
			}
			return nil
		}
		st.In.Add(r.bytes)
		info.Records++
		records++
		switch {
		case r.err != nil:
			if opt.Strict {
				return fmt.Errorf("strict: %w", r.err)
			}
			st.Error(r.kind, r.bytes, r.err.Error())
			info.Errors++
			if IsIncident(r.kind) {
				pos.Incidents[r.file]++
			}
			slog.Debug("record error", "kind", r.kind, "err", r.err)
		case r.doc == nil:
			st.Drop(r.skip, r.bytes)
			info.Skipped++
		default:
			st.Keep(r.doc)
			info.Documents++
			docs++
			if err := w.Write(r.doc); err != nil {
				return err
			}
		}
		// The position after this item: the next item of the same file.
		pos.File, pos.Items = r.file, info.Records
		if opt.Progress != nil {
			opt.Progress(Progress{File: r.file + 1, Files: len(files), Records: records, Documents: docs,
				Bytes: before[r.file] + min(r.off, before[r.file+1]-before[r.file]), TotalBytes: before[len(files)]})
		}
		if w.Full() {
			if err := w.Cut(); err != nil {
				return err
			}
			raw, err := json.Marshal(pos)
			if err != nil {
				return err
			}
			return shards.SaveCheckpoint(out, &shards.Checkpoint{Fingerprint: fp, Consumed: records, Position: raw,
				Outputs: map[string][]shards.ShardInfo{"kept": append(append([]shards.ShardInfo(nil), prev...), w.Shards()...)},
				Stats:   st})
		}
		return nil
	}
	if err := shards.OrderedMap(ctx, opt.Workers, next, convert, emit); err != nil {
		if ctx.Err() != nil {
			// Everything up to the last checkpoint is on disk, written
			// atomically; what came after it is redone on resume, so that
			// shard boundaries stay where an uninterrupted run puts them.
			cp, _ := shards.LoadCheckpoint(out)
			if cp == nil || cp.Consumed == 0 {
				return nil, fmt.Errorf("ingest interrupted (%w) before its first checkpoint: %s holds nothing yet; the same command starts again from the beginning", ctx.Err(), out)
			}
			return nil, fmt.Errorf("ingest interrupted (%w): %s keeps the %d records up to its last checkpoint; run the same command again to resume", ctx.Err(), out, cp.Consumed)
		}
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := st.Balanced(); err != nil {
		return nil, err
	}
	all := append(prev, w.Shards()...)
	if err := shards.WriteStats(out, st); err != nil {
		return nil, err
	}
	m := &shards.Manifest{Kind: shards.KindDocuments, Stage: "ingest", Fingerprint: fp, Shards: all,
		Totals: shards.SumShards(all), Sources: shards.SourceTotals(st), Inputs: pos.Inputs}
	if err := shards.WriteManifest(out, m); err != nil {
		return nil, err
	}
	return st, shards.RemoveCheckpoint(out)
}

// recordBytes is the size a record counts for in the stats: its payload.
func recordBytes(rec *Record) int64 { return int64(len(rec.Body)) }

// UniqueNames gives each file the shortest trailing part of its path (its
// base name, or more directories when another input shares that name) that
// no other input has, so one-document-per-file inputs get distinct, stable
// ids: "index.html" stays "index.html" unless a/index.html and b/index.html
// are both ingested. A URL's name comes from its redacted form
// (store.Redact): no credential of a presigned URL reaches an id.
func UniqueNames(files []string) []string {
	parts := make([][]string, len(files))
	for i, f := range files {
		parts[i] = strings.Split(filepath.ToSlash(filepath.Clean(redactInput(f))), "/")
	}
	suffix := func(i, n int) string {
		p := parts[i]
		if n > len(p) {
			n = len(p)
		}
		return strings.Join(p[len(p)-n:], "/")
	}
	for i, f := range files {
		if f == StdinName {
			parts[i] = []string{"stdin"}
		}
	}
	names := make([]string, len(files))
	depth := make([]int, len(files))
	for i := range files {
		depth[i] = 1
	}
	for {
		count := map[string]int{}
		for i := range files {
			names[i] = suffix(i, depth[i])
			count[names[i]]++
		}
		grew := false
		for i := range files {
			if count[names[i]] > 1 && depth[i] < len(parts[i]) {
				depth[i]++
				grew = true
			}
		}
		if !grew {
			return names
		}
	}
}
