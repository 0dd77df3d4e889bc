package ingest

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
)

// toUTF8 decodes an HTML (or text) body to UTF-8 and returns the name of the
// charset used. The order follows the WHATWG encoding sniffing algorithm
// (BOM, then the HTTP Content-Type charset, then <meta> in the first 1024
// bytes), except that a body that declares (or is assumed to be) UTF-8 but
// is not valid UTF-8 goes to statistical detection (gogs/chardet, the
// detector go-trafilatura's own parser uses): crawls are full of pages whose
// declared charset is wrong or missing, as the legacy Japanese pages in
// ClueWeb09 are. Bytes that still do not decode become U+FFFD.
func toUTF8(body []byte, contentType string, html bool) (string, string) {
	var enc encoding.Encoding
	var name string
	if html {
		var certain bool
		enc, name, certain = charset.DetermineEncoding(body, contentType)
		declared := certain || hasMetaCharset(body)
		if !declared {
			enc, name = nil, ""
		}
	} else if strings.Contains(strings.ToLower(contentType), "charset=") {
		enc, name = charsetFromContentType(contentType)
	}
	if enc != nil && isUTF8Name(name) {
		if utf8.Valid(body) {
			return string(stripBOM(body)), "utf-8"
		}
		enc = nil // declared UTF-8, but it is not: detect.
	}
	if enc == nil {
		if utf8.Valid(body) {
			return string(stripBOM(body)), "utf-8"
		}
		enc, name = detectCharset(body, html)
	}
	out, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return strings.ToValidUTF8(string(body), "\uFFFD"), "utf-8"
	}
	if !utf8.Valid(out) {
		out = []byte(strings.ToValidUTF8(string(out), "\uFFFD"))
	}
	return string(out), name
}

func charsetFromContentType(ct string) (encoding.Encoding, string) {
	_, after, _ := strings.Cut(strings.ToLower(ct), "charset=")
	cs := strings.Trim(strings.TrimSpace(strings.Split(after, ";")[0]), `"'`)
	return charset.Lookup(cs)
}

func isUTF8Name(name string) bool {
	return name == "utf-8" || name == "utf8"
}

func stripBOM(b []byte) []byte {
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
}

// hasMetaCharset reports whether the first 1024 bytes declare a charset in a
// <meta> tag (DetermineEncoding reports such a find as not certain).
func hasMetaCharset(b []byte) bool {
	if len(b) > 1024 {
		b = b[:1024]
	}
	return bytes.Contains(bytes.ToLower(b), []byte("charset"))
}

// detectCharset guesses the charset of a body that is not valid UTF-8.
// Without any guess it falls back to windows-1252, as browsers do.
func detectCharset(body []byte, html bool) (encoding.Encoding, string) {
	sample := body
	if len(sample) > 64<<10 {
		sample = sample[:64<<10]
	}
	det := chardet.NewTextDetector()
	if html {
		det = chardet.NewHtmlDetector()
	}
	if res, err := det.DetectBest(sample); err == nil && res != nil {
		if e, name := charset.Lookup(res.Charset); e != nil && !isUTF8Name(name) {
			return e, name
		}
	}
	e, name := charset.Lookup("windows-1252")
	if e == nil {
		return unicode.UTF8, "utf-8"
	}
	return e, name
}
