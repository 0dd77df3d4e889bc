package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// PathListPrefix marks a paths list input: "paths:LIST" or
// "paths:LIST?base=BASE". LIST (a local file or a URL, gzipped or not)
// holds one path per line, as Common Crawl's warc.paths.gz does; each is
// joined to BASE, which defaults to the root of LIST's bucket or host
// (s3://commoncrawl/ for s3://commoncrawl/crawl-data/.../warc.paths.gz,
// https://data.commoncrawl.org/ for the same list over HTTPS). Lines that
// are URLs themselves are taken as they are; blank lines and lines starting
// with '#' are ignored. A remote input named *.paths or *.paths.gz is a
// paths list without the prefix.
const PathListPrefix = "paths:"

// Handles reports whether arg is an input Expand resolves (a URL or a paths
// list) rather than a local file, directory or glob.
func Handles(arg string) bool { return IsRemote(arg) || strings.HasPrefix(arg, PathListPrefix) }

// StatConcurrency is how many remote stat requests Expand and StatMany keep
// in flight: a Common Crawl paths list names about 90,000 objects.
var StatConcurrency = 32

// Expand resolves one input argument that Handles into inputs, in order:
//   - scheme://bucket/prefix/ (ending in '/'): every object under it, sorted;
//   - a key with glob characters (s3://b/crawl/*.warc.gz): the objects under
//     the part before the first one that match it with path.Match, sorted;
//   - scheme://bucket/key or an http(s) URL: that object (a key that is not
//     an object but a "directory" is listed as if it ended in '/');
//   - a paths list (PathListPrefix): the paths it names, in its order.
func Expand(ctx context.Context, arg string) ([]Info, error) {
	if strings.HasPrefix(arg, PathListPrefix) {
		return expandPathList(ctx, strings.TrimPrefix(arg, PathListPrefix))
	}
	if !IsRemote(arg) {
		return nil, fmt.Errorf("%s: not a URL or a paths list", arg)
	}
	b, err := backendFor(ctx, arg)
	if err != nil {
		return nil, err
	}
	if _, ok := b.(httpBackend); ok {
		if isPathListName(arg) {
			return expandPathList(ctx, arg)
		}
		in, err := Stat(ctx, arg)
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
		rememberInfo(in)
		return []Info{in}, nil
	}
	scheme, bucket, key, err := splitBlobURL(arg)
	if err != nil {
		return nil, err
	}
	root := scheme + "://" + bucket + "/"
	switch {
	case key == "" || strings.HasSuffix(key, "/"):
		return listNonEmpty(ctx, b, root+key, arg)
	case strings.ContainsAny(key, "*?["):
		lit := key[:strings.IndexAny(key, "*?[")]
		all, err := b.list(ctx, root+lit)
		if err != nil {
			return nil, err
		}
		var out []Info
		for _, in := range all {
			ok, err := path.Match(key, strings.TrimPrefix(in.Path, root))
			if err != nil {
				return nil, fmt.Errorf("input %q: %w", Redact(arg), err)
			}
			if ok {
				out = append(out, in)
				rememberInfo(in)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("input %q: %w: matches no object", Redact(arg), ErrNotFound)
		}
		return out, nil
	}
	if isPathListName(arg) {
		return expandPathList(ctx, arg)
	}
	in, err := Stat(ctx, arg)
	if err == nil {
		rememberInfo(in)
		return []Info{in}, nil
	}
	if errors.Is(err, ErrNotFound) {
		if all, lerr := b.list(ctx, arg+"/"); lerr == nil && len(all) > 0 {
			for _, in := range all {
				rememberInfo(in)
			}
			return all, nil
		}
	}
	return nil, fmt.Errorf("input: %w", err)
}

func listNonEmpty(ctx context.Context, b backend, prefix, arg string) ([]Info, error) {
	all, err := b.list(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("input %s: %w: no objects under this prefix", Redact(arg), ErrNotFound)
	}
	for _, in := range all {
		rememberInfo(in)
	}
	return all, nil
}

func isPathListName(p string) bool {
	if i := strings.IndexAny(p, "?#"); i >= 0 && IsRemote(p) {
		p = p[:i]
	}
	return strings.HasSuffix(p, ".paths") || strings.HasSuffix(p, ".paths.gz")
}

// splitBase splits "LIST?base=BASE" (also "&base=") into LIST and BASE.
func splitBase(spec string) (list, base string) {
	for _, sep := range []string{"?base=", "&base="} {
		if i := strings.LastIndex(spec, sep); i >= 0 {
			return spec[:i], spec[i+len(sep):]
		}
	}
	return spec, ""
}

// rootOf is the root of a URL's bucket or host: s3://bucket/, https://host/.
func rootOf(u string) string {
	s := Scheme(u)
	rest := u[len(s)+3:]
	host, _, _ := strings.Cut(rest, "/")
	return s + "://" + host + "/"
}

func expandPathList(ctx context.Context, spec string) ([]Info, error) {
	list, base := splitBase(spec)
	if base == "" {
		if !IsRemote(list) {
			return nil, fmt.Errorf("paths list %s is a local file: give the base its paths are relative to, as paths:%s?base=s3://BUCKET/ (or https://HOST/)", list, list)
		}
		base = rootOf(list)
	}
	f, err := Open(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("paths list: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("paths list %s: %w", Redact(list), err)
		}
		defer gz.Close()
		r = gz
	}
	var paths []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		p := strings.TrimSpace(sc.Text())
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		if !IsRemote(p) {
			p = Join(base, p)
		}
		paths = append(paths, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("paths list %s: %w", Redact(list), err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("paths list %s names no paths", Redact(list))
	}
	return StatMany(ctx, paths)
}

// StatMany describes many inputs, StatConcurrency remote ones at a time, in
// the order given. The first failure is returned, naming its input.
func StatMany(ctx context.Context, paths []string) ([]Info, error) {
	out := make([]Info, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, max(1, StatConcurrency))
	var wg sync.WaitGroup
	for i, p := range paths {
		if !IsRemote(p) {
			out[i], errs[i] = Stat(ctx, p)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = Stat(ctx, p)
			if errs[i] == nil {
				rememberInfo(out[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("input: %w", err)
		}
	}
	return out, nil
}

// infoCache holds what Expand and StatMany learnt about inputs (from
// listings and stats), so that the runner's Stat and Open of each input do
// not ask again; outputs are never cached.
var infoCache sync.Map

func rememberInfo(in Info) { infoCache.Store(in.Path, in) }

func cachedInfo(p string) (Info, bool) {
	v, ok := infoCache.Load(p)
	if !ok {
		return Info{}, false
	}
	return v.(Info), true
}
