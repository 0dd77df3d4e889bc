package tokenize

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jscan is a small JSON scanner for the two large parts of a tokenizer.json
// (the vocabulary object and the merges array, 9-33 MB in current models).
// encoding/json decodes them in about 4x the CPU time (measured on Gemma 3's
// 33 MB file); everything else in the file still goes through encoding/json.
type jscan struct {
	data []byte
	pos  int
}

func (s *jscan) errorf(format string, a ...any) error {
	return fmt.Errorf("byte offset %d: %s", s.pos, fmt.Sprintf(format, a...))
}

func (s *jscan) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *jscan) peek() byte {
	s.ws()
	if s.pos >= len(s.data) {
		return 0
	}
	return s.data[s.pos]
}

func (s *jscan) expect(c byte) error {
	if s.peek() != c {
		if s.pos >= len(s.data) {
			return s.errorf("want %q, got the end", c)
		}
		return s.errorf("want %q, got %q", c, s.data[s.pos])
	}
	s.pos++
	return nil
}

// str reads a JSON string.
func (s *jscan) str() (string, error) {
	if err := s.expect('"'); err != nil {
		return "", err
	}
	start := s.pos
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		if c == '"' {
			out := string(s.data[start:s.pos])
			s.pos++
			return out, nil
		}
		if c == '\\' {
			return s.strEscaped(start)
		}
		if c < 0x20 {
			return "", s.errorf("control character in string")
		}
		s.pos++
	}
	return "", s.errorf("unterminated string")
}

func (s *jscan) strEscaped(start int) (string, error) {
	buf := append([]byte(nil), s.data[start:s.pos]...)
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return string(buf), nil
		case c < 0x20:
			return "", s.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.data) {
			return "", s.errorf("unterminated escape")
		}
		e := s.data[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return "", s.errorf("bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if s.pos+1 < len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
					save := s.pos
					s.pos += 2
					var ok2 bool
					if r2, ok2 = s.hex4(); !ok2 {
						s.pos = save
						r2 = -1
					}
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					r = d
				} else {
					// A lone surrogate: encoding/json also makes it U+FFFD.
					r = utf8.RuneError
					if r2 >= 0 {
						s.pos -= 6
					}
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", s.errorf("bad escape \\%c", e)
		}
	}
	return "", s.errorf("unterminated string")
}

func (s *jscan) hex4() (rune, bool) {
	if s.pos+4 > len(s.data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.data[s.pos:s.pos+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	s.pos += 4
	return rune(v), true
}

// uint32 reads a non-negative integer.
func (s *jscan) uint32() (uint32, error) {
	s.ws()
	start := s.pos
	var v uint64
	for s.pos < len(s.data) && s.data[s.pos] >= '0' && s.data[s.pos] <= '9' {
		v = v*10 + uint64(s.data[s.pos]-'0')
		if v > 1<<31 {
			return 0, s.errorf("number too large")
		}
		s.pos++
	}
	if s.pos == start {
		return 0, s.errorf("want a non-negative integer")
	}
	if s.pos < len(s.data) && (s.data[s.pos] == '.' || s.data[s.pos] == 'e' || s.data[s.pos] == 'E') {
		return 0, s.errorf("want an integer")
	}
	return uint32(v), nil
}

// skip passes over one value of any kind and returns its bytes.
func (s *jscan) skip() ([]byte, error) {
	s.ws()
	start := s.pos
	depth := 0
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch c {
		case '"':
			if _, err := s.skipString(); err != nil {
				return nil, err
			}
			if depth == 0 {
				return s.data[start:s.pos], nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return s.data[start:s.pos], nil
			}
			depth--
			if depth < 0 {
				return nil, s.errorf("unbalanced %q", c)
			}
			if depth == 0 {
				s.pos++
				return s.data[start:s.pos], nil
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 {
				return s.data[start:s.pos], nil
			}
		}
		s.pos++
	}
	if depth != 0 {
		return nil, s.errorf("unexpected end")
	}
	return s.data[start:s.pos], nil
}

func (s *jscan) skipString() (int, error) {
	s.pos++
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '\\':
			s.pos += 2
			continue
		case '"':
			s.pos++
			return s.pos, nil
		}
		s.pos++
	}
	return 0, s.errorf("unterminated string")
}

// object calls f with each key of an object; f must consume the value.
func (s *jscan) object(f func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := f(k); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("want ',' or '}' in an object")
		}
	}
}

// array calls f for each element of an array; f must consume it.
func (s *jscan) array(f func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := f(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.errorf("want ',' or ']' in an array")
		}
	}
}

// topLevel returns the raw value of each key of the object in data.
func topLevel(data []byte) (map[string][]byte, error) {
	s := &jscan{data: data}
	out := map[string][]byte{}
	err := s.object(func(k string) error {
		v, err := s.skip()
		out[k] = v
		return err
	})
	if err == nil && s.peek() != 0 {
		err = s.errorf("data after the top-level object")
	}
	return out, err
}

// vocabMap parses {"token": id, ...}.
func vocabMap(raw []byte) (map[string]uint32, error) {
	s := &jscan{data: raw}
	m := make(map[string]uint32, len(raw)/16)
	err := s.object(func(k string) error {
		id, err := s.uint32()
		m[k] = id
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vocab: %w", err)
	}
	return m, nil
}

var errNotMerge = errors.New("a merge is neither \"a b\" nor [\"a\", \"b\"]")

// mergePairs parses ["a b", ...] or [["a", "b"], ...].
func mergePairs(raw []byte) ([][2]string, error) {
	s := &jscan{data: raw}
	var out [][2]string
	err := s.array(func() error {
		switch s.peek() {
		case '"':
			v, err := s.str()
			if err != nil {
				return err
			}
			for i := 0; i < len(v); i++ {
				if v[i] == ' ' {
					if i == 0 || i == len(v)-1 || indexByteFrom(v, ' ', i+1) >= 0 {
						break
					}
					out = append(out, [2]string{v[:i], v[i+1:]})
					return nil
				}
			}
			return fmt.Errorf("merge %d: %q is not two space-separated tokens", len(out), v)
		case '[':
			var pair [2]string
			n := 0
			err := s.array(func() error {
				v, err := s.str()
				if n < 2 {
					pair[n] = v
				}
				n++
				return err
			})
			if err != nil {
				return err
			}
			if n != 2 {
				return fmt.Errorf("merge %d: %w", len(out), errNotMerge)
			}
			out = append(out, pair)
			return nil
		}
		return fmt.Errorf("merge %d: %w", len(out), errNotMerge)
	})
	if err != nil {
		return nil, fmt.Errorf("merges: %w", err)
	}
	return out, nil
}

func indexByteFrom(s string, c byte, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
