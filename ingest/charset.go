package ingest

import (
	"bytes"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/gogs/chardet"
	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/unicode"
)

// toUTF8 decodes an HTML (or text) body to UTF-8 and returns the name of the
// charset used. The order follows the WHATWG encoding sniffing algorithm
// (BOM, then the HTTP Content-Type charset, then a <meta> declaration),
// with three changes that crawls need:
//   - the <meta> scan looks at the first metaScanBytes, not 1024: archived
//     and CMS pages put kilobytes of injected scripts before their <meta>
//     (archive.org's copy of a gb2312 xinhuanet page in go-trafilatura's
//     test pages declares its charset at byte 1,400, after a <script
//     charset="utf-8"> that must not count);
//   - a body that is valid UTF-8 and has multi-byte sequences is UTF-8,
//     whatever it declares (legacy text is practically never valid UTF-8
//     by chance, while pages served as Latin-1 but written in UTF-8 are
//     common);
//   - a body that declares (or is assumed to be) UTF-8 but is not valid
//     goes to statistical detection (gogs/chardet, the detector
//     go-trafilatura's own parser uses), as the legacy Japanese pages of
//     ClueWeb09 need.
//
// Bytes that still do not decode become U+FFFD.
func toUTF8(body []byte, contentType string, html bool) (string, string) {
	if utf8.Valid(body) && hasMultiByte(body) {
		return string(stripBOM(body)), "utf-8"
	}
	var enc encoding.Encoding
	var name string
	if e, n, ok := bomEncoding(body); ok {
		enc, name = e, n
	} else if strings.Contains(strings.ToLower(contentType), "charset=") {
		enc, name = charsetFromContentType(contentType)
	}
	if enc == nil && html {
		enc, name = metaCharset(body)
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

// metaScanBytes is how far into a page toUTF8 looks for a <meta> charset.
const metaScanBytes = 16 << 10

// metaCharsetRE matches a charset inside a <meta> tag, in either the HTML5
// form (<meta charset="x">) or the http-equiv form (content="...; charset=x").
var metaCharsetRE = regexp.MustCompile(`(?i)<meta\b[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:\-]+)`)

// metaCharset finds the first <meta> charset declaration in the head of a
// page that names an encoding Go knows.
func metaCharset(body []byte) (encoding.Encoding, string) {
	if len(body) > metaScanBytes {
		body = body[:metaScanBytes]
	}
	for _, m := range metaCharsetRE.FindAllSubmatch(body, 8) {
		if e, name := charset.Lookup(string(m[1])); e != nil {
			return e, name
		}
	}
	return nil, ""
}

// bomEncoding recognises a byte-order mark.
func bomEncoding(b []byte) (encoding.Encoding, string, bool) {
	switch {
	case bytes.HasPrefix(b, []byte("\xef\xbb\xbf")):
		return unicode.UTF8, "utf-8", true
	case bytes.HasPrefix(b, []byte("\xfe\xff")):
		return unicode.UTF16(unicode.BigEndian, unicode.UseBOM), "utf-16be", true
	case bytes.HasPrefix(b, []byte("\xff\xfe")):
		return unicode.UTF16(unicode.LittleEndian, unicode.UseBOM), "utf-16le", true
	}
	return nil, "", false
}

// hasMultiByte reports whether b contains any non-ASCII byte.
func hasMultiByte(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
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
