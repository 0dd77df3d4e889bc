package report

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smelt-dev/smelt/shards"
)

var inspectTmpl = template.Must(template.New("inspect").Funcs(funcs).ParseFS(templateFS, "templates/inspect.html", "templates/style.html"))

// PageSize is the number of documents a listing page shows.
const PageSize = 50

// Search bounds: a substring search reads at most maxSearchScan documents
// and returns at most maxSearchHits.
const (
	maxSearchScan = 200_000
	maxSearchHits = 100
)

// Server is `smelt inspect`'s read-only web interface to a run: every step's
// kept and dropped documents, paged, with search by id or url. Document text
// is always escaped (html/template), and every page is served with a
// Content-Security-Policy that forbids scripts.
type Server struct {
	run  *Run
	ctx  context.Context
	sets []*docSet
	by   map[string]*docSet // "step/set"

	reportOnce sync.Once
	reportHTML []byte
	reportErr  error

	hostsMu sync.RWMutex
	hosts   map[string]bool // allowed Host names besides the loopback ones
	refused sync.Map        // Host names refused (and logged) once
}

// NewServer serves run. ctx bounds the indexes built on first use (a
// search, a listing by reason); it is the server's lifetime, not a
// request's, so that an abandoned request does not spoil them.
func NewServer(ctx context.Context, run *Run) *Server {
	s := &Server{run: run, ctx: ctx, by: map[string]*docSet{}}
	for _, st := range run.Steps {
		if st.Manifest != nil && st.Manifest.Kind != shards.KindTokens {
			set := newDocSet(st.Name, "kept", st.Dir, st.Manifest)
			s.sets = append(s.sets, set)
			s.by[st.Name+"/kept"] = set
		}
		if st.Dropped != nil {
			set := newDocSet(st.Name, "dropped", filepath.Join(st.Dir, shards.DroppedDir), st.Dropped)
			s.sets = append(s.sets, set)
			s.by[st.Name+"/dropped"] = set
		}
	}
	return s
}

// AllowHost adds a name or IP address that requests may give as their Host
// header (a port is ignored). Loopback hosts (localhost, 127.0.0.0/8, ::1)
// are always allowed; smelt inspect adds the address it listens on, and
// the names given with --allow-host.
func (s *Server) AllowHost(host string) {
	s.hostsMu.Lock()
	defer s.hostsMu.Unlock()
	if s.hosts == nil {
		s.hosts = map[string]bool{}
	}
	s.hosts[normHost(host)] = true
}

// normHost lower-cases a Host header's name, drops its port, brackets and
// a trailing dot.
func normHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// hostAllowed reports whether a request's Host names this server. A page
// on another site that gets its name resolved to 127.0.0.1 (DNS rebinding)
// reaches the listener, but its requests carry that site's name, which is
// refused here; the browser's same-origin policy then keeps it out.
func (s *Server) hostAllowed(host string) bool {
	h := normHost(host)
	if h == "" {
		return false
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	s.hostsMu.RLock()
	defer s.hostsMu.RUnlock()
	return s.hosts[h]
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostAllowed(r.Host) {
		if _, seen := s.refused.LoadOrStore(normHost(r.Host), true); !seen {
			slog.Warn("inspect: refused a request naming another host (a DNS rebinding attempt, or a name missing from --allow-host)", "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr)
		}
		http.Error(w, fmt.Sprintf("smelt inspect does not serve host %q: use http://localhost or the address it listens on, or start it with --allow-host", r.Host), http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "read-only: only GET and HEAD", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	start := time.Now()
	var err error
	switch r.URL.Path {
	case "/":
		err = s.index(w, r)
	case "/docs":
		err = s.docs(w, r)
	case "/doc":
		err = s.doc(w, r)
	case "/search":
		err = s.search(w, r)
	case "/report":
		err = s.report(w, r)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		code := http.StatusInternalServerError
		if he, ok := err.(httpError); ok {
			code = he.code
		}
		if code >= 500 {
			slog.Warn("inspect", "path", r.URL.String(), "err", err)
		} else {
			slog.Debug("inspect", "path", r.URL.String(), "status", code, "err", err)
		}
		http.Error(w, err.Error(), code)
		return
	}
	slog.Debug("inspect", "path", r.URL.String(), "took", time.Since(start))
}

type httpError struct {
	code int
	msg  string
}

func (e httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

// render executes a page into a buffer first, so that a template error
// never leaves half a page.
func render(w http.ResponseWriter, name string, data any) error {
	var b bytes.Buffer
	if err := inspectTmpl.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := w.Write(b.Bytes())
	return err
}

// page is what every inspect page has.
type page struct {
	Title string
	Run   *Run
	Query string
}

// StepView is one step on the index page.
type StepView struct {
	*Step
	Kept, Dropped *docSet
	Reasons       []ReasonView
}

// ReasonView is one drop reason with its count.
type ReasonView struct {
	Reason string
	Count  shards.Count
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) error {
	var steps []StepView
	for _, st := range s.run.Steps {
		v := StepView{Step: st, Kept: s.by[st.Name+"/kept"], Dropped: s.by[st.Name+"/dropped"]}
		if st.Stats != nil {
			for _, k := range shards.SortedKeys(st.Stats.Dropped) {
				if c := st.Stats.Dropped[k]; c.Docs > 0 {
					v.Reasons = append(v.Reasons, ReasonView{k, c})
				}
			}
		}
		steps = append(steps, v)
	}
	return render(w, "index", struct {
		page
		Steps []StepView
	}{page{Title: "smelt inspect", Run: s.run}, steps})
}

func (s *Server) set(r *http.Request) (*docSet, error) {
	step, set := r.FormValue("step"), r.FormValue("set")
	if set == "" {
		set = "kept"
	}
	ds := s.by[step+"/"+set]
	if ds == nil {
		return nil, notFound("no %s documents in step %q", set, step)
	}
	return ds, nil
}

func intParam(r *http.Request, name string) (int64, error) {
	v := r.FormValue(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// Pager links the pages of a listing.
type Pager struct {
	Page, Pages int64
	Prev, Next  string
	First, Last int64 // rows shown, 1-based
	Total       int64
}

func (s *Server) docs(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.set(r)
	if err != nil {
		return err
	}
	pg, err := intParam(r, "page")
	if err != nil {
		return err
	}
	reason := r.FormValue("reason")
	total := ds.Rows()
	var rows []int64 // nil: all rows in order
	if reason != "" {
		ix, err := ds.index(s.ctx)
		if err != nil {
			return err
		}
		rows = ix.reasons[reason]
		total = int64(len(rows))
	}
	pages := max(1, (total+PageSize-1)/PageSize)
	if pg >= pages {
		return notFound("page %d: the listing has %d pages", pg, pages)
	}
	lo, hi := pg*PageSize, min(total, (pg+1)*PageSize)
	var docs []*Doc
	if rows == nil {
		if docs, err = ds.Read(r.Context(), lo, hi); err != nil {
			return err
		}
	} else {
		if docs, err = s.readRows(r.Context(), ds, rows[lo:hi]); err != nil {
			return err
		}
	}
	link := func(p int64) string {
		q := fmt.Sprintf("/docs?step=%s&set=%s&page=%d", urlq(ds.Step), ds.Set, p)
		if reason != "" {
			q += "&reason=" + urlq(reason)
		}
		return q
	}
	pager := Pager{Page: pg + 1, Pages: pages, First: lo + 1, Last: hi, Total: total}
	if pg > 0 {
		pager.Prev = link(pg - 1)
	}
	if pg+1 < pages {
		pager.Next = link(pg + 1)
	}
	return render(w, "docs", struct {
		page
		Set    *docSet
		Reason string
		Docs   []*Doc
		Pager  Pager
	}{page{Title: fmt.Sprintf("%s: %s documents", ds.Step, ds.Set), Run: s.run}, ds, reason, docs, pager})
}

// readRows reads the given rows of a set (in the given order), reading
// consecutive rows together.
func (s *Server) readRows(ctx context.Context, ds *docSet, rows []int64) ([]*Doc, error) {
	var out []*Doc
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j] == rows[j-1]+1 {
			j++
		}
		docs, err := ds.Read(ctx, rows[i], rows[j-1]+1)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
		i = j
	}
	return out, nil
}

func (s *Server) doc(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.set(r)
	if err != nil {
		return err
	}
	row, err := intParam(r, "row")
	if err != nil {
		return err
	}
	if row >= ds.Rows() {
		return notFound("row %d: %s/%s has %d documents", row, ds.Step, ds.Set, ds.Rows())
	}
	docs, err := ds.Read(r.Context(), row, row+1)
	if err != nil {
		return err
	}
	d := docs[0]
	var orig *Doc
	if d.Drop != nil && d.Drop.DupOf != "" {
		// The survivor is kept by the same step; look there first.
		hits, err := s.findID(r.Context(), d.Drop.DupOf, s.by[ds.Step+"/kept"])
		if err != nil {
			return err
		}
		if len(hits) > 0 {
			orig = hits[0]
		}
	}
	return render(w, "doc", struct {
		page
		Doc  *Doc
		Orig *Doc
	}{page{Title: d.ID, Run: s.run}, d, orig})
}

// findID finds documents by exact id in prefer (if not nil), else in
// every set.
func (s *Server) findID(ctx context.Context, id string, prefer *docSet) ([]*Doc, error) {
	sets := s.sets
	if prefer != nil {
		sets = append([]*docSet{prefer}, sets...)
	}
	for _, ds := range sets {
		hits, err := s.lookup(ctx, ds, id, false)
		if err != nil {
			return nil, err
		}
		if len(hits) > 0 {
			return hits, nil
		}
	}
	return nil, nil
}

// lookup finds the documents of ds whose id (or url) is exactly key.
func (s *Server) lookup(ctx context.Context, ds *docSet, key string, url bool) ([]*Doc, error) {
	ix, err := ds.index(s.ctx)
	if err != nil {
		return nil, err
	}
	list := ix.byID
	if url {
		list = ix.byURL
	}
	var out []*Doc
	for _, row := range find(list, key) {
		docs, err := ds.Read(ctx, row, row+1)
		if err != nil {
			return nil, err
		}
		if d := docs[0]; (!url && d.ID == key) || (url && d.URL == key) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) error {
	q := strings.TrimSpace(r.FormValue("q"))
	var hits []*Doc
	scanned, exact, truncated := int64(0), true, false
	if q != "" {
		for _, ds := range s.sets {
			for _, url := range []bool{false, true} {
				h, err := s.lookup(r.Context(), ds, q, url)
				if err != nil {
					return err
				}
				hits = append(hits, h...)
			}
		}
		if len(hits) == 0 {
			// No exact match: a bounded substring scan of ids and urls.
			exact = false
			var err error
			hits, scanned, truncated, err = s.scan(r.Context(), q)
			if err != nil {
				return err
			}
		}
	}
	return render(w, "search", struct {
		page
		Hits      []*Doc
		Exact     bool
		Scanned   int64
		Truncated bool
		MaxScan   int64
	}{page{Title: "search " + q, Run: s.run, Query: q}, hits, exact, scanned, truncated, maxSearchScan})
}

// scan reads documents in step order looking for q in ids and urls, up to
// maxSearchScan documents and maxSearchHits hits.
func (s *Server) scan(ctx context.Context, q string) (hits []*Doc, scanned int64, truncated bool, err error) {
	const chunk = 1024
	for _, ds := range s.sets {
		for lo := int64(0); lo < ds.Rows(); lo += chunk {
			if scanned >= maxSearchScan || len(hits) >= maxSearchHits {
				return hits, scanned, true, nil
			}
			docs, err := ds.Read(ctx, lo, lo+chunk)
			if err != nil {
				return nil, scanned, false, err
			}
			for _, d := range docs {
				if strings.Contains(d.ID, q) || strings.Contains(d.URL, q) {
					d.Text = snippet(d.Text, 400)
					hits = append(hits, d)
				}
			}
			scanned += int64(len(docs))
		}
	}
	return hits, scanned, truncated, nil
}

func (s *Server) report(w http.ResponseWriter, r *http.Request) error {
	s.reportOnce.Do(func() {
		var b bytes.Buffer
		s.reportErr = Write(s.ctx, &b, s.run)
		s.reportHTML = b.Bytes()
	})
	if s.reportErr != nil {
		return s.reportErr
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, err := w.Write(s.reportHTML)
	return err
}

func urlq(s string) string { return template.URLQueryEscaper(s) }
