// Package dedup removes exact and near-duplicate documents.
//
// Exact duplicates share the hash of their normalised text (Unicode NFC,
// case-folded, whitespace collapsed; invalid UTF-8 bytes kept as they are).
// Near duplicates are found with MinHash signatures over word n-grams and
// LSH banding; every candidate pair is verified by its estimated Jaccard
// similarity, pairs are joined into clusters with union-find, and one
// survivor per cluster is kept (kept by an earlier run, then highest
// quality, then smallest id), so the outcome does not depend on input order,
// workers or partitioning.
//
// Dedup runs as steps of tasks whose memory is bounded by their settings,
// not by the crawl: SketchTask (one per input: signatures by row and key
// records sorted into bucket partitions), BucketTask (one per partition: a
// k-way merge into verified pairs, O(k) comparisons for a bucket of k
// documents), ClusterTask (union-find over the pairs: memory grows with
// the duplicates) and RouteTask (one per input). Run runs them in one
// process; the pipelines package runs them as separate tasks, locally or as
// Slurm job arrays. Documents are referenced by (task, row), never by their
// ids. A Store (per-run immutable segments and a Badger catalogue)
// remembers every kept document, so a later run deduplicates a new crawl
// against everything kept before.
//
// Why the LSH buckets are sorted band-key files rather than
// github.com/ekzhu/minhash-lsh's index: that index holds every signature and
// every band key of the crawl in one process's maps, and its Add and Index
// run serially. Measured with TestScale on 200k synthetic documents in one
// run: the in-memory dedup built on it peaked at 1,069 MiB RSS and ran at
// 10.4 MB of text per CPU-second; the staged steps peaked at 121 MiB per task
// and ran at 18.8 MB per CPU-second, and their peak grows 1.30x from 200k to
// 2M documents where the index's grows linearly. ekzhu's index stays in the
// tests as the reference the staged steps must equal.
package dedup

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// folder is safe for one goroutine only; foldString makes one per call on
// the (rare) non-ASCII path.
func foldString(s string) string {
	return cases.Fold().String(norm.NFC.String(s))
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// Normalize returns the text that exact dedup hashes: Unicode NFC,
// case-folded, runs of white space collapsed to one space, trimmed. A byte
// that is not part of valid UTF-8 (Latin-1 text from another tool, say) is
// kept as it is, after a 0xFF marker (a byte valid UTF-8 never holds), so
// that different invalid bytes never fold together into U+FFFD and never
// equal valid text.
func Normalize(text string) string {
	return string(appendNormalized(nil, text))
}

// appendNormalized appends Normalize(text) to dst. ASCII text (the common
// case) takes a fast path: NFC is the identity on ASCII and case folding is
// lower-casing.
func appendNormalized(dst []byte, text string) []byte {
	if !isASCII(text) {
		space := false
		forEachPiece(text, func(valid string) {
			// Folding can produce NFC-unnormalised sequences only in
			// theory; re-composing keeps the definition exact.
			for _, r := range norm.NFC.String(foldString(valid)) {
				if unicode.IsSpace(r) {
					space = len(dst) > 0
					continue
				}
				if space {
					dst = append(dst, ' ')
					space = false
				}
				dst = utf8.AppendRune(dst, r)
			}
		}, func(b byte) {
			if space {
				dst = append(dst, ' ')
				space = false
			}
			dst = append(dst, invalidMark, b)
		})
		return dst
	}
	space := false
	start := len(dst)
	dst = slices.Grow(dst, len(text))
	for i := 0; i < len(text); i++ {
		c := asciiNorm[text[i]]
		if c == 0 {
			space = len(dst) > start
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

// asciiNorm lower-cases ASCII bytes and maps ASCII white space (the
// characters unicode.IsSpace accepts below 0x80) to 0.
var asciiNorm = func() (t [256]byte) {
	for c := range t {
		t[c] = byte(c)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c - 'A' + 'a')
	}
	for _, c := range []byte{' ', '\t', '\n', '\r', '\v', '\f'} {
		t[c] = 0
	}
	return t
}()

// Words splits text into the words MinHash shingles: maximal runs of
// letters, digits and marks of the normalised (NFC, case-folded) text.
// Punctuation separates words and is dropped, so that re-punctuated copies
// still match.
func Words(text string) []string {
	var out []string
	forEachWord(nil, text, func(w []byte) { out = append(out, string(w)) })
	return out
}

// forEachWord calls f with each word of text, normalised, in a buffer that
// is reused (buf is scratch space the caller may pass in to avoid
// allocation).
func forEachWord(buf []byte, text string, f func([]byte)) []byte {
	if !isASCII(text) {
		buf = buf[:0]
		forEachPiece(text, func(valid string) {
			for _, r := range norm.NFC.String(foldString(valid)) {
				if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) {
					buf = utf8.AppendRune(buf, r)
					continue
				}
				if len(buf) > 0 {
					f(buf)
					buf = buf[:0]
				}
			}
		}, func(b byte) {
			// An invalid byte (Latin-1 text, say) is part of its word.
			buf = append(buf, invalidMark, b)
		})
		if len(buf) > 0 {
			f(buf)
		}
		return buf
	}
	buf = buf[:0]
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			if len(buf) > 0 {
				f(buf)
				buf = buf[:0]
			}
			continue
		}
		buf = append(buf, c)
	}
	if len(buf) > 0 {
		f(buf)
	}
	return buf
}

// invalidMark precedes each invalid byte in normalised text and words.
const invalidMark = 0xFF

// forEachPiece splits text into maximal runs of valid UTF-8 (valid) and
// the single bytes that are not part of a valid sequence (invalid), in
// order.
func forEachPiece(text string, valid func(string), invalid func(byte)) {
	start := 0
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && n == 1 {
			if i > start {
				valid(text[start:i])
			}
			invalid(text[i])
			i++
			start = i
			continue
		}
		i += n
	}
	if start < len(text) {
		valid(text[start:])
	}
}

// firstLine returns the first non-empty line of text, cut to n bytes at a
// rune boundary.
func firstLine(text string, n int) string {
	text = strings.TrimLeft(text, " \t\r\n")
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	text = strings.TrimSpace(text)
	if len(text) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text
}
