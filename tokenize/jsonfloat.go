package tokenize

import (
	"fmt"
	"math"
	"strconv"
)

// The Hugging Face tokenizers library reads tokenizer.json with serde_json
// without its float_roundtrip feature, whose number parser is fast but not
// correctly rounded: it keeps at most 19 significant digits in a u64,
// converts that to a float64 and then multiplies or divides by the float64
// power of ten. A 17-digit Unigram score such as -7.2457075119018555 comes
// out one unit in the last place away from the nearest float64
// (-7.245707511901856 when written back): 748 of the 4,000 scores of
// tokenize/testdata/spm/uni4k.model as the SentencePiece converter writes
// them (TestHFScoreParse). Two paths whose pieces tie exactly in correctly
// rounded scores (a run of zeros as 00+00+000 or 000+00+00) then no longer
// tie in the library, which picks one; reading the scores the library's way
// makes smelt pick the same. Go's strconv has no such mode, hence this
// hand-written copy of the arithmetic (not of any code).

// pow10f are 1e0 ... 1e308 as float64 constants (each correctly rounded).
// (math.Pow10 multiplies two table entries above 1e31, which may round
// differently, so each is parsed.)
var pow10f = func() [309]float64 {
	var p [309]float64
	for i := range p {
		f, err := strconv.ParseFloat("1e"+strconv.Itoa(i), 64)
		if err != nil {
			panic(err)
		}
		p[i] = f
	}
	return p
}()

// parseJSONFloatLikeSerde parses the JSON number s (already validated by
// encoding/json) to the float64 that serde_json's default parser gives.
func parseJSONFloatLikeSerde(s string) (float64, error) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	const maxU = math.MaxUint64
	overflows := func(sig uint64, d byte) bool {
		return sig >= maxU/10 && (sig > maxU/10 || uint64(d) > maxU%10)
	}
	digit := func(j int) bool { return j < len(s) && s[j] >= '0' && s[j] <= '9' }
	if !(i < len(s) && s[i] >= '0' && s[i] <= '9') {
		return 0, fmt.Errorf("not a JSON number: %q", s)
	}
	var sig uint64
	exp := 0
	// Integer part: digits past u64 are dropped, each raising the exponent.
	for ; digit(i); i++ {
		d := s[i] - '0'
		if overflows(sig, d) {
			exp++
			continue
		}
		if exp > 0 { // already overflowed: every later digit is dropped
			exp++
			continue
		}
		sig = sig*10 + uint64(d)
	}
	// Fraction: digits past u64 are dropped.
	if i < len(s) && s[i] == '.' {
		i++
		full := false // the fraction is read on after an integer overflow, as serde_json does
		for ; digit(i); i++ {
			if full {
				continue
			}
			d := s[i] - '0'
			if overflows(sig, d) {
				full = true
				continue
			}
			sig = sig*10 + uint64(d)
			exp--
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		negExp := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			negExp = s[i] == '-'
			i++
		}
		e := 0
		for ; digit(i); i++ {
			if e > 1<<20 { // far past any float64: the result is 0 or out of range
				continue
			}
			e = e*10 + int(s[i]-'0')
		}
		if negExp {
			exp -= e
		} else {
			exp += e
		}
	}
	if i != len(s) || len(s) == 0 {
		return 0, fmt.Errorf("not a JSON number: %q", s)
	}
	f := float64(sig)
	for {
		a := exp
		if a < 0 {
			a = -a
		}
		if a < len(pow10f) {
			if exp >= 0 {
				f *= pow10f[a]
				if math.IsInf(f, 0) {
					return 0, fmt.Errorf("number out of range: %s", s)
				}
			} else {
				f /= pow10f[a]
			}
			break
		}
		if f == 0 {
			break
		}
		if exp >= 0 {
			return 0, fmt.Errorf("number out of range: %s", s)
		}
		f /= 1e308
		exp += 308
	}
	if neg {
		f = -f
	}
	return f, nil
}
