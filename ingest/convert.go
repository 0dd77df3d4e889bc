package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	nurl "net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/markusmobius/go-trafilatura"
	"github.com/smelt-dev/smelt/shards"
	"golang.org/x/net/html"
)

// ExtractOptions returns the go-trafilatura options Convert uses for a page
// at pageURL (which may be ""). Comments are excluded (forum and blog
// comments are mostly noise for training) and the publish date comes from
// the page's metadata only: the crawl date is known from the input, and
// scanning the whole page for dates costs time. Benchmarks against plain
// go-trafilatura use the same options.
func ExtractOptions(pageURL string) trafilatura.Options {
	opts := trafilatura.Options{ExcludeComments: true, HtmlDateMode: trafilatura.Disabled}
	if pageURL != "" {
		if u, err := nurl.Parse(pageURL); err == nil && u.Scheme != "" && u.Host != "" {
			opts.OriginalURL = u
		}
	}
	return opts
}

// Convert turns one record into a Document: HTTP decoding (status, chunked
// transfer-encoding, Content-Encoding), charset detection and transcoding to
// UTF-8, HTML-to-text extraction with go-trafilatura, language id. When it
// cannot make a document it returns a typed skip reason (one of SkipReasons)
// or a *RecordError instead. It is safe for concurrent use and
// deterministic.
func Convert(rec *Record, source string) (doc *shards.Document, skip string, err error) {
	return ConvertContext(context.Background(), rec, source)
}

// ConvertContext is Convert that gives up when ctx is done, returning
// ctx's error (not a *RecordError): the record was not converted.
func ConvertContext(ctx context.Context, rec *Record, source string) (doc *shards.Document, skip string, err error) {
	if rec.Skip != "" {
		return nil, rec.Skip, nil
	}
	recErr := func(kind string, err error) *RecordError {
		return &RecordError{File: rec.File, Offset: rec.Offset, Line: rec.Line, Kind: kind, Err: fmt.Errorf("record %s: %w", rec.Key, err)}
	}
	max := rec.MaxBytes
	if max <= 0 {
		max = DefaultMaxRecordBytes
	}
	meta := map[string]any{}
	for k, v := range rec.Meta {
		meta[k] = v
	}
	delete(meta, "detect_charset")
	var text, title, pageDate string
	switch rec.Kind {
	case PayloadText:
		if !utf8.Valid(rec.Body) {
			if _, detect := rec.Meta["detect_charset"]; !detect {
				return nil, "", recErr(ErrUTF8Invalid, errors.New("text is not valid UTF-8"))
			}
			var cs string
			text, cs = toUTF8(rec.Body, rec.ContentType, false)
			meta["charset"] = cs
		} else {
			text = string(stripBOM(rec.Body))
		}
	case PayloadHTTP, PayloadHTML:
		body, ctype := rec.Body, rec.ContentType
		if rec.Kind == PayloadHTTP {
			resp, err := parseHTTP(rec.Body)
			if err != nil {
				return nil, "", recErr(ErrHTTPInvalid, err)
			}
			meta["http_status"] = resp.status
			if resp.status < 200 || resp.status > 299 {
				return nil, SkipHTTPStatus, nil
			}
			ctype = resp.header["content-type"]
			if ctype != "" {
				meta["content_type"] = ctype
			}
			if !isHTMLContent(ctype, resp.body) {
				return nil, SkipNonHTML, nil
			}
			body, err = decodeBody(resp.header, resp.body, max)
			switch {
			case errors.Is(err, errUnsupportedEncoding):
				return nil, SkipHTTPEncoding, nil
			case errors.Is(err, errTooLarge):
				return nil, "", recErr(ErrRecordTooLarge, err)
			case err != nil:
				return nil, "", recErr(ErrHTTPBody, err)
			}
		}
		maxHTML := rec.MaxHTML
		if maxHTML <= 0 {
			maxHTML = DefaultMaxHTMLBytes
		}
		if int64(len(body)) > 2*maxHTML { // no charset shrinks a page by half: do not transcode it
			return nil, SkipHTMLTooLarge, nil
		}
		page, cs := toUTF8(body, ctype, true)
		if int64(len(page)) > maxHTML {
			return nil, SkipHTMLTooLarge, nil
		}
		meta["charset"] = cs
		res, skip, err := extractBudget(ctx, page, rec.URL, rec.ExtractTimeout)
		if err != nil {
			return nil, "", err
		}
		if skip != "" {
			return nil, skip, nil
		}
		text = nodeText(res.ContentNode)
		if strings.TrimSpace(text) == "" {
			text = res.ContentText
		}
		title = res.Metadata.Title
		if !res.Metadata.Date.IsZero() {
			pageDate = res.Metadata.Date.UTC().Format(time.RFC3339)
		}
	default:
		return nil, "", recErr(ErrHTTPInvalid, fmt.Errorf("unknown payload kind %q", rec.Kind))
	}
	text = strings.TrimSpace(text)
	if text == "" {
		if rec.Kind == PayloadText {
			return nil, SkipEmptyText, nil
		}
		return nil, SkipExtractEmpty, nil
	}
	if title != "" {
		meta["title"] = title
	}
	if pageDate != "" {
		meta["page_date"] = pageDate
	}
	doc = &shards.Document{
		ID:     source + "/" + rec.Key,
		Source: source,
		URL:    rec.URL,
		Date:   normalizeDate(rec.Date),
		Text:   text,
	}
	if doc.Date != rec.Date && rec.Date != "" {
		meta["date_raw"] = rec.Date
	}
	doc.Lang, doc.LangScore = rec.detectLanguage(text)
	meta["url"] = doc.URL
	meta["date"] = doc.Date
	meta["lang"] = doc.Lang
	meta["lang_score"] = doc.LangScore
	meta["record_key"] = rec.Key
	if rec.ContentType != "" {
		meta["record_content_type"] = rec.ContentType
	}
	// encoding/json writes map keys sorted, so Meta is deterministic.
	b, err := json.Marshal(meta)
	if err != nil {
		return nil, "", recErr(ErrJSONInvalid, fmt.Errorf("metadata: %w", err))
	}
	doc.Meta = string(b)
	return doc, "", nil
}

// isHTMLContent reports whether an HTTP response is an HTML page: by its
// Content-Type, or by sniffing the body when the type is missing or generic.
func isHTMLContent(ctype string, body []byte) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.Split(ctype, ";")[0]))
	}
	switch mt {
	case "text/html", "application/xhtml+xml", "application/xhtml", "text/xhtml":
		return true
	case "", "application/octet-stream", "unknown/unknown", "text/plain", "application/x-unknown-content-type":
		if len(body) > 512 {
			body = body[:512]
		}
		return strings.HasPrefix(http.DetectContentType(body), "text/html")
	}
	return false
}

// abandoned counts extractions that ran past their time budget and were
// left to finish in the background (go-trafilatura cannot be stopped).
var abandoned atomic.Int64

// extractBudget runs extract within a time budget (0: the default, <0:
// none) and gives up when ctx is done. An extraction given up on runs on
// in the background until it ends; the HTML size cap bounds what it holds.
func extractBudget(ctx context.Context, page, pageURL string, budget time.Duration) (*trafilatura.ExtractResult, string, error) {
	if budget == 0 {
		budget = DefaultExtractTimeout
	}
	if budget < 0 && ctx.Done() == nil {
		res, skip := extract(page, pageURL)
		return res, skip, nil
	}
	type out struct {
		res  *trafilatura.ExtractResult
		skip string
	}
	ch := make(chan out, 1)
	go func() {
		res, skip := extract(page, pageURL)
		ch <- out{res, skip}
	}()
	var timeout <-chan time.Time
	if budget > 0 {
		t := time.NewTimer(budget)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case o := <-ch:
		return o.res, o.skip, nil
	case <-timeout:
		n := abandoned.Add(1)
		slog.Warn("ingest: extraction over its time budget; page dropped", "url", pageURL, "bytes", len(page), "budget", budget, "abandoned", n)
		go func() { <-ch; abandoned.Add(-1) }()
		return nil, SkipExtractTimeout, nil
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

// maxHTMLNodes and maxHTMLDepth bound the parsed page handed to
// go-trafilatura. Its time and memory follow the number of nodes more than
// the bytes (measured under the 2 MiB cap, on a busy machine: 2 MiB of long
// paragraphs, ~30k nodes, 227 MB RSS and 13 s; 2 MiB of tiny elements,
// ~350k nodes, 1.0 GB and 54 s), and deep nesting makes html.Parse take
// minutes (1.6 MB of nested divs: over 60 s). Real pages stay far below:
// the 945 pages of go-trafilatura's comparison set that parse have at most
// 27,755 nodes and nest at most 42 deep. Browsers cap nesting at 512.
const (
	maxHTMLNodes = 100_000
	maxHTMLDepth = 512
)

// impliedEnd lists the elements whose end tag pages often leave out (the
// parser closes them), so they do not count for nesting in shallowEnough.
var impliedEnd = map[string]bool{"p": true, "li": true, "dt": true, "dd": true, "option": true,
	"tr": true, "td": true, "th": true, "thead": true, "tbody": true, "tfoot": true, "colgroup": true,
	"caption": true, "rb": true, "rt": true, "rp": true, "optgroup": true, "html": true, "head": true, "body": true}

// voidElements have no end tag.
var voidElements = map[string]bool{"area": true, "base": true, "br": true, "col": true, "embed": true,
	"hr": true, "img": true, "input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
	"param": true, "keygen": true, "frame": true, "basefont": true, "isindex": true}

// shallowEnough estimates, with one pass of the tokenizer, whether the
// page nests at most max deep. html.Parse itself takes time quadratic in
// the nesting (1.6 MB of nested divs: over a minute), so a page that nests
// far too deep must be caught before it is parsed; the exact check
// (withinLimits) follows the parse. The pass costs 2.5 % of extraction
// (200 comparison pages: 0.15 s against 6.1 s).
func shallowEnough(page string, max int) bool {
	z := html.NewTokenizer(strings.NewReader(page))
	depth := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return true
		case html.StartTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] && !impliedEnd[string(name)] {
				if depth++; depth > max {
					return false
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] && !impliedEnd[string(name)] && depth > 0 {
				depth--
			}
		}
	}
}

// withinLimits reports whether the tree under n has at most maxNodes nodes
// and nests at most maxDepth deep, without recursing (the tree may be
// deeper than the stack should be).
func withinLimits(n *html.Node, maxNodes, maxDepth int) bool {
	nodes, depth := 0, 0
	for c := n; c != nil; {
		if nodes++; nodes > maxNodes || depth > maxDepth {
			return false
		}
		if c.FirstChild != nil {
			c = c.FirstChild
			depth++
			continue
		}
		for c != n && c.NextSibling == nil {
			c = c.Parent
			depth--
		}
		if c == n {
			break
		}
		c = c.NextSibling
	}
	return true
}

// extract runs go-trafilatura on a UTF-8 page. A panic inside the extractor
// (it has hit nil pointers on odd markup) becomes SkipExtractFailed.
func extract(page, pageURL string) (res *trafilatura.ExtractResult, skip string) {
	defer func() {
		if p := recover(); p != nil {
			slog.Warn("ingest: go-trafilatura panicked", "url", pageURL, "panic", p)
			res, skip = nil, SkipExtractFailed
		}
	}()
	if !shallowEnough(page, 8*maxHTMLDepth) {
		return nil, SkipHTMLTooLarge
	}
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return nil, SkipExtractFailed
	}
	if !withinLimits(doc, maxHTMLNodes, maxHTMLDepth) {
		return nil, SkipHTMLTooLarge
	}
	res, err = trafilatura.ExtractDocument(doc, ExtractOptions(pageURL))
	if err != nil {
		if strings.Contains(err.Error(), "not long enough") {
			return nil, SkipExtractEmpty
		}
		return nil, SkipExtractFailed
	}
	if res == nil || strings.TrimSpace(res.ContentText) == "" {
		return nil, SkipExtractEmpty
	}
	return res, ""
}

// dateLayouts are the date forms seen in WARC-Date and JSON inputs.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02",
	"20060102150405",
	time.RFC1123,
	time.RFC1123Z,
}

// normalizeDate returns d as RFC 3339 (UTC) when it parses, else unchanged.
func normalizeDate(d string) string {
	d = strings.TrimSpace(d)
	if d == "" {
		return ""
	}
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, d); err == nil {
			return t.UTC().Format(time.RFC3339Nano)
		}
	}
	return d
}
