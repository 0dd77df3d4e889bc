package filter

import (
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/smelt-dev/smelt/shards"
)

// Decontamination reasons and stats keys.
const (
	// DecontamNGram drops a document sharing an n-gram with an eval set
	// (policy drop), or one with nothing left once the matches are cut
	// out (policy gpt3). Value: "SET#RECORD" of the first match.
	DecontamNGram = "decontam/ngram"
	// DecontamPieces drops a document the gpt3 policy cut into more than
	// MaxPieces pieces. Value: "PIECES SET#RECORD".
	DecontamPieces = "decontam/too_many_pieces"
	// StatDecontamNGrams + SET counts matched n-gram positions per
	// document (N = documents matching the set, Sum = n-grams).
	StatDecontamNGrams = "decontam/ngrams/"
	// StatDecontamRecord + "SET#RECORD" marks an eval record found in the
	// crawl (N = documents that contain it): the contaminated records.
	StatDecontamRecord = "decontam/record/"
	// RuleDecontam is the rule's name.
	RuleDecontam = "decontam"
)

// Decontamination policies.
const (
	DecontamDrop = "drop"
	DecontamGPT3 = "gpt3"
)

// Decontam removes benchmark text from training data: documents sharing a
// normalised n-gram with an eval set indexed by `smelt decontam index`.
//
// Policy drop drops every such document. Policy gpt3 is GPT-3's procedure
// (Brown et al. 2020, appendix C): each matching n-gram is removed with
// Window characters on either side, the document is split there, pieces
// shorter than MinPiece characters are discarded, and a document split into
// more than MaxPieces pieces is dropped. smelt's stages keep one document
// per input document, so the kept pieces are joined with a blank line.
type Decontam struct {
	// Index is the index file from `smelt decontam index`.
	Index string `yaml:"index"`
	// Policy is drop (default) or gpt3.
	Policy string `yaml:"policy"`
	// Window, MinPiece and MaxPieces are the gpt3 policy's 200, 200 and 10.
	Window    int `yaml:"window"`
	MinPiece  int `yaml:"min_piece"`
	MaxPieces int `yaml:"max_pieces"`
	// RecordsPerMatch bounds how many eval records one matching n-gram is
	// attributed to in the stats (8).
	RecordsPerMatch int `yaml:"records_per_match"`

	// IndexID is the opened index's content hash: it goes into the run's
	// fingerprint so that a rebuilt index never resumes an old run.
	IndexID string `yaml:"-"`

	once sync.Once
	idx  *Index
	err  error
}

// DefaultDecontam returns the rule's defaults (no index: set one).
func DefaultDecontam() *Decontam {
	return &Decontam{Policy: DecontamDrop, Window: 200, MinPiece: 200, MaxPieces: 10, RecordsPerMatch: 8}
}

// Name implements Rule.
func (c *Decontam) Name() string { return RuleDecontam }

// Reasons implements Rule.
func (c *Decontam) Reasons() []string {
	if c.Policy == DecontamGPT3 {
		return []string{DecontamNGram, DecontamPieces}
	}
	return []string{DecontamNGram}
}

func (c *Decontam) validate() error {
	if c.Index == "" {
		return fmt.Errorf("decontam.index: give the index file from `smelt decontam index`")
	}
	switch c.Policy {
	case DecontamDrop, DecontamGPT3:
	default:
		return fmt.Errorf("decontam.policy %q: want drop or gpt3", c.Policy)
	}
	if c.Window < 0 || c.MinPiece < 0 || c.MaxPieces < 1 || c.RecordsPerMatch < 1 {
		return fmt.Errorf("decontam: window and min_piece must be >= 0, max_pieces and records_per_match >= 1")
	}
	return nil
}

// Open opens the index (once; later calls return the first result) and
// sets IndexID. Config.Pipeline calls it.
func (c *Decontam) Open() error {
	c.once.Do(func() {
		if c.err = c.validate(); c.err != nil {
			return
		}
		c.idx, c.err = OpenIndex(c.Index)
		if c.err == nil {
			c.IndexID = c.idx.ID
		}
	})
	return c.err
}

// UseIndex sets an already opened index (tests, benchmarks).
func (c *Decontam) UseIndex(x *Index) {
	c.once.Do(func() {})
	c.idx, c.IndexID, c.err = x, x.ID, nil
}

// Check implements Rule.
func (c *Decontam) Check(d *shards.Document) (string, string) {
	a := c.Annotate(d)
	return a.Reason, a.Value
}

// DecontamNote is what the rule keeps in a matching document's Meta under
// "decontam": the matched passages (input byte ranges, merged when they
// overlap, at most maxNoteMatches) with the eval record of their first
// n-gram.
type DecontamNote struct {
	Policy string `json:"policy"`
	// NGrams counts the document's matching n-gram positions.
	NGrams  int             `json:"ngrams"`
	Matches []DecontamMatch `json:"matches"`
	// Cuts are the byte offsets in the output text where removed text was
	// (policy gpt3, kept documents).
	Cuts []int `json:"cuts,omitempty"`
}

// DecontamMatch is one matched passage.
type DecontamMatch struct {
	Set    string `json:"set"`
	Record string `json:"record"`
	// Start and End are the passage's byte range in the input text, Text
	// its first 300 bytes.
	Start int    `json:"start"`
	End   int    `json:"end"`
	Text  string `json:"text"`
}

const maxNoteMatches = 50

var wordsPool = sync.Pool{New: func() any { return new([]wordSpan) }}

// Annotate implements Annotator.
func (c *Decontam) Annotate(d *shards.Document) Annotation {
	if err := c.Open(); err != nil {
		// Config.Pipeline opens the index first; a rule used without it
		// must not silently keep contaminated text.
		panic(fmt.Sprintf("decontam rule used without an index: %v", err))
	}
	x := c.idx
	wp := wordsPool.Get().(*[]wordSpan)
	defer wordsPool.Put(wp)
	words := normWords(d.Text, (*wp)[:0])
	*wp = words
	// Fast path: no match, no allocation.
	var spans [][2]int // word index ranges [first, last] of merged matches
	ngrams := 0
	ngramHashes(words, x.N, func(i int, h uint64) bool {
		if x.has(h, nil) {
			ngrams++
			if k := len(spans) - 1; k >= 0 && spans[k][1] >= i-1 {
				spans[k][1] = i + x.N - 1
			} else {
				spans = append(spans, [2]int{i, i + x.N - 1})
			}
		}
		return true
	})
	if ngrams == 0 {
		return Annotation{}
	}
	// Attribute matches to eval sets and records.
	counts := map[string]int{}
	note := &DecontamNote{Policy: c.Policy, NGrams: ngrams}
	first := ""
	ngramHashes(words, x.N, func(i int, h uint64) bool {
		seenSet := map[uint32]bool{}
		k := 0
		x.has(h, func(rec int) bool {
			set, id := x.Record(rec)
			if !seenSet[x.recSet[rec]] {
				seenSet[x.recSet[rec]] = true
				counts[StatDecontamNGrams+set]++
			}
			key := set + "#" + id
			counts[StatDecontamRecord+key] = 1
			if first == "" {
				first = key
			}
			k++
			return k < c.RecordsPerMatch
		})
		return true
	})
	for _, sp := range spans {
		if len(note.Matches) == maxNoteMatches {
			break
		}
		start, end := int(words[sp[0]].start), int(words[sp[1]].end)
		var rec int
		h := uint64(0)
		ngramHashes(words[sp[0]:], x.N, func(_ int, hh uint64) bool { h = hh; return false })
		x.has(h, func(r int) bool { rec = r; return false })
		set, id := x.Record(rec)
		note.Matches = append(note.Matches, DecontamMatch{Set: set, Record: id, Start: start, End: end,
			Text: truncUTF8(d.Text[start:end], 300)})
	}
	a := Annotation{Counts: counts, Note: note}
	if c.Policy == DecontamDrop {
		a.Reason, a.Value = DecontamNGram, first
		return a
	}
	c.gpt3(d.Text, words, spans, &a, note, first)
	return a
}

// gpt3 cuts the matched spans, with Window characters either side, out of
// text and keeps the pieces of at least MinPiece characters.
func (c *Decontam) gpt3(text string, words []wordSpan, spans [][2]int, a *Annotation, note *DecontamNote, first string) {
	type cut struct{ lo, hi int }
	var cuts []cut
	for _, sp := range spans {
		lo := backRunes(text, int(words[sp[0]].start), c.Window)
		hi := fwdRunes(text, int(words[sp[1]].end), c.Window)
		if k := len(cuts) - 1; k >= 0 && lo <= cuts[k].hi {
			cuts[k].hi = max(cuts[k].hi, hi)
		} else {
			cuts = append(cuts, cut{lo, hi})
		}
	}
	// Pieces between cuts, each with whether text was cut before it.
	type piece struct {
		text     string
		cutEarly bool
	}
	var pieces []piece
	pos, cutBefore := 0, false
	for k, ct := range append(cuts, cut{len(text), len(text)}) {
		if p := strings.TrimSpace(text[pos:ct.lo]); p != "" {
			pieces = append(pieces, piece{p, cutBefore})
		}
		pos, cutBefore = ct.hi, k < len(cuts)
	}
	if len(pieces) > c.MaxPieces {
		a.Reason, a.Value = DecontamPieces, fmt.Sprintf("%d %s", len(pieces), first)
		return
	}
	var b strings.Builder
	removed := false // text removed since the last kept piece
	for _, p := range pieces {
		removed = removed || p.cutEarly
		if utf8.RuneCountInString(p.text) < c.MinPiece {
			removed = true
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		if removed {
			note.Cuts = append(note.Cuts, b.Len())
		}
		removed = false
		b.WriteString(p.text)
	}
	if b.Len() == 0 {
		a.Reason, a.Value = DecontamNGram, first
		return
	}
	if removed || strings.TrimSpace(text[cuts[len(cuts)-1].hi:]) == "" {
		note.Cuts = append(note.Cuts, b.Len())
	}
	a.Text, a.Changed = b.String(), true
	a.Removed = max(0, len(text)-b.Len())
}

// backRunes returns the offset n runes before i (or 0).
func backRunes(s string, i, n int) int {
	for ; n > 0 && i > 0; n-- {
		_, w := utf8.DecodeLastRuneInString(s[:i])
		i -= w
	}
	return i
}

// fwdRunes returns the offset n runes after i (or len(s)).
func fwdRunes(s string, i, n int) int {
	for ; n > 0 && i < len(s); n-- {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return i
}

// truncUTF8 cuts s to at most n bytes at a rune boundary.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
