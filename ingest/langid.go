package ingest

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/RadhiFadlillah/whatlanggo"
)

// Language identification uses whatlanggo (RadhiFadlillah's fork, the one
// go-trafilatura already depends on), chosen by measurement against
// pemistahl/lingua-go v1.4.0 on the 866 go-trafilatura comparison pages that
// declare <html lang> and extract to at least 200 characters (588 de, 168 en,
// 59 es, 19 fr, 17 pl, ...; the lang attribute is the label), 2 shared cores:
//
//	whatlanggo, whole text      accuracy 0.954  1173 docs/s   6.1 MB/s
//	whatlanggo, first 4 KiB     accuracy 0.953  1661 docs/s   8.7 MB/s
//	lingua-go, all languages    accuracy 0.953    43 docs/s   0.2 MB/s  (5.2 s load, 2.5 GB RSS)
//	lingua-go, low accuracy     accuracy 0.953    47 docs/s   0.2 MB/s
//
// Both miss the same pages (mostly English-labelled pages whose text is not
// English), so lingua's 27x cost and 2.5 GB of models buy nothing here.
// Sample size, in a second run on a busier machine: whole text 279 docs/s,
// 4 KiB 484, 3 KiB 647, 2 KiB 868, 1 KiB 1149 docs/s, with accuracy 0.954,
// 0.953, 0.953, 0.953, 0.952. We look at the first 2 KiB: no accuracy lost,
// and language id stays a small part of Convert (about 5 % of its time).
const langSample = 2048

var iso6391 = sync.OnceValue(func() map[whatlanggo.Lang]string {
	// whatlanggo builds a map on every Iso6391 call; build ours once.
	m := map[whatlanggo.Lang]string{}
	for l := whatlanggo.Lang(0); l < 400; l++ {
		code := l.Iso6391()
		if code == "" {
			code = l.Iso6393()
		}
		if code != "" {
			m[l] = code
		}
	}
	return m
})

// LangDetector identifies the language of a text: a code and a confidence
// in [0, 1]. Name identifies it (with its model) in a run's fingerprint.
type LangDetector interface {
	DetectLanguage(text string) (string, float64)
	Name() string
}

func (r *Record) detectLanguage(text string) (string, float64) {
	if r.LangID != nil {
		return r.LangID.DetectLanguage(text)
	}
	return DetectLanguage(text)
}

// DetectLanguage returns the language of text (ISO 639-1 where one exists,
// else ISO 639-3) and the detector's confidence in [0, 1]; "" and 0 when the
// text has no letters to judge.
func DetectLanguage(text string) (string, float64) {
	if len(text) > langSample {
		cut := langSample
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut]
	}
	info := whatlanggo.Detect(text)
	if info.Lang < 0 || info.Confidence <= 0 {
		// Confidence 0 means the best two languages score (nearly) the
		// same. whatlanggo ranks its candidates in map order, so on an
		// exact tie its answer changes from call to call (seen on the
		// mojibake of a gb2312 page: fr or nn at random); "undetermined"
		// is the honest and deterministic answer.
		return "", 0
	}
	code := iso6391()[info.Lang]
	if code == "" {
		return "", 0
	}
	if code == "zh" && kanaShare(text) >= 0.1 {
		// whatlanggo picks the script with the most letters, so Japanese
		// written with more kanji than kana comes out as Chinese; Chinese
		// text has no kana at all. The confidence stays whatlanggo's.
		code = "ja"
	}
	conf := info.Confidence
	if conf < 0 {
		conf = 0
	} else if conf > 1 {
		conf = 1
	}
	return code, conf
}

// kanaShare is the share of kana among the Han and kana letters of text.
func kanaShare(text string) float64 {
	kana, han := 0, 0
	for _, r := range text {
		switch {
		case unicode.In(r, unicode.Hiragana, unicode.Katakana):
			kana++
		case unicode.Is(unicode.Han, r):
			han++
		}
	}
	if kana+han == 0 {
		return 0
	}
	return float64(kana) / float64(kana+han)
}
