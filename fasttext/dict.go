package fasttext

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// The dictionary's fixed strings, as in fastText.
const (
	// EOS is the end-of-line token a line's newline turns into.
	EOS = "</s>"
	// LabelPrefix marks a token as a label. fastText does not store it in
	// the model file; every published model uses this default.
	LabelPrefix = "__label__"
	bow         = '<'
	eow         = '>'
)

const (
	typeWord  = 0
	typeLabel = 1
)

type entry struct {
	word  string
	count int64
	typ   int8
	// subwords are the input-matrix rows of the word: its own id, then its
	// character n-gram buckets (none for EOS or when maxn is 0).
	subwords []int32
}

// Dictionary holds a model's words and labels and maps text to input rows:
// word ids, character n-gram buckets and word n-gram buckets.
type Dictionary struct {
	words   []entry
	word2id map[string]int32
	nwords  int32
	nlabels int32
	ntokens int64
	// pruneSize is -1 for an unpruned dictionary, else the number of
	// n-gram buckets kept by quantization; prune maps a kept bucket to its
	// row after the words (dense when bucket is small enough, else map).
	pruneSize  int64
	pruneDense []int32
	pruneMap   map[int32]int32
	// pruneBits has bit h set when bucket h is kept: a 2M-bucket model's
	// bitset is 256 KiB and stays in cache, where the 8 MiB index does not,
	// and most n-grams of a text are not kept (lid.176 keeps 42,765 of
	// 2,000,000 buckets).
	pruneBits []uint64
	bucket    uint32
	// bucketM is the multiplier of Lemire's exact remainder by bucket
	// (x % bucket without a division, for 32-bit x).
	bucketM    uint64
	minn, maxn int
	wordNgrams int
	eosID      int32
}

// Words is the number of words (labels excluded).
func (d *Dictionary) Words() int { return int(d.nwords) }

// NLabels is the number of labels.
func (d *Dictionary) NLabels() int { return int(d.nlabels) }

// Label returns label i (with its prefix).
func (d *Dictionary) Label(i int) string { return d.words[int(d.nwords)+i].word }

// WordID returns the id of word, or -1.
func (d *Dictionary) WordID(word string) int32 {
	if id, ok := d.word2id[word]; ok {
		return id
	}
	return -1
}

func (d *Dictionary) labelCounts() []int64 {
	out := make([]int64, d.nlabels)
	for i := range out {
		out[i] = d.words[int(d.nwords)+i].count
	}
	return out
}

// hashString is fastText's string hash: 32-bit FNV-1a over the bytes, each
// byte sign-extended first (fastText hashes C++ chars, which are signed on
// the platforms it ships for), so bytes >= 0x80 hash as 0xffffff80 | b.
func hashString(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(int8(s[i]))) * 16777619
	}
	return h
}

func readDictionary(r *reader, a *Args) (*Dictionary, error) {
	size := r.i32("dictionary size")
	nwords := r.i32("dictionary nwords")
	nlabels := r.i32("dictionary nlabels")
	d := &Dictionary{nwords: nwords, nlabels: nlabels, ntokens: r.i64("dictionary ntokens"), pruneSize: r.i64("dictionary prune size")}
	if r.err != nil {
		return nil, r.err
	}
	if size < 0 || nwords < 0 || nlabels < 0 || int64(size) != int64(nwords)+int64(nlabels) || size > 1<<28 {
		return nil, fmt.Errorf("dictionary sizes %d = %d words + %d labels do not add up (byte offset %d)", size, nwords, nlabels, r.off-28)
	}
	if d.pruneSize > int64(a.Bucket) || d.pruneSize < -1 {
		return nil, fmt.Errorf("dictionary keeps %d pruned buckets of %d (byte offset %d)", d.pruneSize, a.Bucket, r.off-8)
	}
	if !r.fits(int64(size), minDictEntryOn, "dictionary size") {
		return nil, r.err
	}
	d.words = make([]entry, size)
	for i := range d.words {
		e := &d.words[i]
		e.word = r.cstring("dictionary word")
		e.count = r.i64("dictionary count")
		e.typ = int8(r.u8("dictionary entry type"))
		if r.err != nil {
			return nil, r.err
		}
		if e.typ != typeWord && e.typ != typeLabel {
			return nil, fmt.Errorf("dictionary entry %d (%q): unknown type %d at byte offset %d", i, e.word, e.typ, r.off-1)
		}
		if (e.typ == typeLabel) != (int32(i) >= nwords) {
			return nil, fmt.Errorf("dictionary entry %d (%q): words must come before labels (byte offset %d)", i, e.word, r.off-1)
		}
	}
	d.setArgs(a)
	if d.pruneSize > 0 {
		if !r.fits(d.pruneSize, 8, "prune index") {
			return nil, r.err
		}
		// The dense index costs 4 bytes a bucket: it is used only when the
		// file's prune entries (8 bytes each) are not far fewer than the
		// buckets, so a tiny file cannot ask for it (lid.176 keeps one
		// bucket in 47).
		if d.bucket <= 1<<25 && int64(d.bucket) <= 64*d.pruneSize+1<<16 {
			d.pruneDense = make([]int32, d.bucket)
			d.pruneBits = make([]uint64, (d.bucket+63)/64)
			for i := range d.pruneDense {
				d.pruneDense[i] = -1
			}
		} else {
			d.pruneMap = make(map[int32]int32, d.pruneSize)
		}
		for range d.pruneSize {
			from, to := r.i32("prune index"), r.i32("prune index")
			if r.err != nil {
				return nil, r.err
			}
			if from < 0 || uint32(from) >= d.bucket || to < 0 || int64(to) >= d.pruneSize {
				return nil, fmt.Errorf("prune index %d -> %d out of range (byte offset %d)", from, to, r.off-8)
			}
			if d.pruneDense != nil {
				d.pruneDense[from] = to
				d.pruneBits[from>>6] |= 1 << (from & 63)
			} else {
				d.pruneMap[from] = to
			}
		}
	}
	d.index()
	return d, nil
}

func (d *Dictionary) setArgs(a *Args) {
	d.bucket = uint32(a.Bucket)
	if d.bucket > 0 {
		d.bucketM = ^uint64(0)/uint64(d.bucket) + 1
	}
	d.minn, d.maxn = int(a.Minn), int(a.Maxn)
	d.wordNgrams = int(a.WordNgrams)
}

// index builds the word lookup and every word's subwords.
func (d *Dictionary) index() {
	d.word2id = make(map[string]int32, len(d.words))
	d.eosID = -1
	var buf []byte
	for i := range d.words {
		e := &d.words[i]
		if _, dup := d.word2id[e.word]; !dup {
			d.word2id[e.word] = int32(i)
		}
		if e.word == EOS {
			d.eosID = int32(i)
		}
		e.subwords = append(e.subwords[:0], int32(i))
		if e.word != EOS && d.maxn > 0 {
			buf = append(append(append(buf[:0], bow), e.word...), eow)
			e.subwords = d.charNgrams(e.subwords, buf)
		}
	}
}

// pushBucket appends the input row of n-gram bucket h, if the (pruned)
// dictionary keeps it.
func (d *Dictionary) pushBucket(ids []int32, h int32) []int32 {
	if d.pruneSize == 0 || h < 0 {
		return ids
	}
	if d.pruneSize > 0 {
		var ok bool
		if d.pruneDense != nil {
			if d.pruneBits[uint32(h)>>6]&(1<<(uint32(h)&63)) == 0 {
				return ids
			}
			h = d.pruneDense[h]
			ok = h >= 0
		} else {
			h, ok = d.pruneMap[h]
		}
		if !ok {
			return ids
		}
	}
	return append(ids, d.nwords+h)
}

// charNgrams appends the buckets of the character n-grams (minn..maxn
// UTF-8 characters) of word, which already has its '<' and '>' around it.
// A one-character n-gram made of '<' or '>' alone is left out. The hash of
// a longer n-gram continues the hash of its prefix, so each start position
// hashes its bytes once.
func (d *Dictionary) charNgrams(ids []int32, word []byte) []int32 {
	if d.bucket == 0 {
		return ids
	}
	for i := 0; i < len(word); i++ {
		if word[i]&0xC0 == 0x80 {
			continue
		}
		h := uint32(2166136261)
		j := i
		for n := 1; j < len(word) && n <= d.maxn; n++ {
			h = (h ^ uint32(int8(word[j]))) * 16777619
			j++
			for j < len(word) && word[j]&0xC0 == 0x80 {
				h = (h ^ uint32(int8(word[j]))) * 16777619
				j++
			}
			if n >= d.minn && !(n == 1 && (i == 0 || j == len(word))) {
				ids = d.pushBucket(ids, int32(d.mod(h)))
			}
		}
	}
	return ids
}

// mod returns x % d.bucket (Lemire, Kaser and Kurz 2019: exact for every
// 32-bit x and divisor; a division costs more than all of an n-gram's
// other work).
func (d *Dictionary) mod(x uint32) uint32 {
	hi, _ := bits.Mul64(d.bucketM*uint64(x), uint64(d.bucket))
	return uint32(hi)
}

// isSpace reports fastText's token separators.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\n', '\r', '\t', '\v', '\f', 0:
		return true
	}
	return false
}

// lineState is the scratch space of one line's conversion to input rows.
type lineState struct {
	ids    []int32
	hashes []int32
	labels []int32
	buf    []byte
}

// addToken appends the rows of one token (a word or a label) and reports
// whether it was EOS, which ends a line.
func (d *Dictionary) addToken(st *lineState, tok string) bool {
	wid, inVocab := d.word2id[tok]
	isLabel := false
	if inVocab {
		isLabel = d.words[wid].typ == typeLabel
	} else {
		isLabel = strings.HasPrefix(tok, LabelPrefix)
	}
	if !isLabel {
		if d.wordNgrams > 1 {
			st.hashes = append(st.hashes, int32(hashString(tok)))
		}
		switch {
		case !inVocab:
			if tok != EOS && d.maxn > 0 {
				st.buf = append(append(append(st.buf[:0], bow), tok...), eow)
				st.ids = d.charNgrams(st.ids, st.buf)
			}
		case d.maxn <= 0:
			st.ids = append(st.ids, wid)
		default:
			st.ids = append(st.ids, d.words[wid].subwords...)
		}
	} else if inVocab {
		st.labels = append(st.labels, wid-d.nwords)
	}
	return tok == EOS
}

// addWordNgrams appends the word n-gram buckets (2..wordNgrams words) of
// the line's word hashes. The hashes are fastText's 32-bit token hashes
// stored as signed integers and widened with sign extension, as fastText
// does.
func (d *Dictionary) addWordNgrams(st *lineState) {
	n := d.wordNgrams
	if n <= 1 || d.bucket == 0 {
		return
	}
	hs := st.hashes
	for i := range hs {
		h := uint64(int64(hs[i]))
		for j := i + 1; j < len(hs) && j < i+n; j++ {
			h = h*116049371 + uint64(int64(hs[j]))
			st.ids = d.pushBucket(st.ids, int32(h%uint64(d.bucket)))
		}
	}
}

// line converts text to input rows and labels the way fastText reads one
// line of a file: tokens are split at fastText's whitespace, a newline
// ends the line and becomes EOS, and so does a literal "</s>" token. When
// newlineIsSpace is set, newlines separate tokens like spaces. When text
// ends without ending the line, eosAtEnd adds the EOS its newline would
// have (fastText adds none to a file's last line without a newline). It
// returns the rest of text after the line.
func (d *Dictionary) line(st *lineState, text string, newlineIsSpace, eosAtEnd bool) string {
	st.ids, st.hashes, st.labels = st.ids[:0], st.hashes[:0], st.labels[:0]
	i := 0
	for i < len(text) {
		c := text[i]
		if isSpace(c) {
			if c == '\n' && !newlineIsSpace {
				d.addToken(st, EOS)
				i++
				goto done
			}
			i++
			continue
		}
		j := i + 1
		for j < len(text) && !isSpace(text[j]) {
			j++
		}
		if d.addToken(st, text[i:j]) {
			// A literal "</s>" ends the line where it stands; fastText
			// then reads the rest as the next line.
			i = j
			goto done
		}
		i = j
	}
	if eosAtEnd {
		d.addToken(st, EOS)
	}
done:
	d.addWordNgrams(st)
	return text[i:]
}

// sortEntries orders words before labels and each by decreasing count,
// ties by the string, so that training is deterministic.
func sortEntries(es []entry) {
	sort.SliceStable(es, func(a, b int) bool {
		if es[a].typ != es[b].typ {
			return es[a].typ < es[b].typ
		}
		if es[a].count != es[b].count {
			return es[a].count > es[b].count
		}
		return es[a].word < es[b].word
	})
}

func (d *Dictionary) write(w *writer) {
	w.i32(int32(len(d.words)))
	w.i32(d.nwords)
	w.i32(d.nlabels)
	w.i64(d.ntokens)
	w.i64(d.pruneSize)
	for _, e := range d.words {
		w.put([]byte(e.word))
		w.put([]byte{0})
		w.i64(e.count)
		w.put([]byte{byte(e.typ)})
	}
	if d.pruneSize > 0 {
		type pair struct{ from, to int32 }
		var ps []pair
		if d.pruneDense != nil {
			for from, to := range d.pruneDense {
				if to >= 0 {
					ps = append(ps, pair{int32(from), to})
				}
			}
		} else {
			for from, to := range d.pruneMap {
				ps = append(ps, pair{from, to})
			}
			sort.Slice(ps, func(a, b int) bool { return ps[a].from < ps[b].from })
		}
		for _, p := range ps {
			w.i32(p.from)
			w.i32(p.to)
		}
	}
}
