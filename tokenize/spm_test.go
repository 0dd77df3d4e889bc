package tokenize

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pbField encodes one length-delimited protobuf field.
func pbField(num int, b []byte) []byte {
	out := pbVarint(nil, uint64(num<<3|2))
	out = pbVarint(out, uint64(len(b)))
	return append(out, b...)
}

func pbVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func pbVarintField(num int, v uint64) []byte {
	return pbVarint(pbVarint(nil, uint64(num<<3)), v)
}

func pbPiece(piece string, score float32, typ int) []byte {
	b := pbField(1, []byte(piece))
	b = append(b, byte(2<<3|5))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(score))
	b = append(b, pbVarintField(3, uint64(typ))...)
	return pbField(1, b)
}

// tinySPM builds a model: <unk> <s> </s>, then pieces with descending
// scores, with the given trainer and normalizer fields.
func tinySPM(pieces []string, trainer, normalizer []byte) []byte {
	var b []byte
	b = append(b, pbPiece("<unk>", 0, spUnknown)...)
	b = append(b, pbPiece("<s>", 0, spControl)...)
	b = append(b, pbPiece("</s>", 0, spControl)...)
	for i, p := range pieces {
		b = append(b, pbPiece(p, float32(-i), spNormal)...)
	}
	b = append(b, pbField(2, trainer)...)
	return append(b, pbField(3, normalizer)...)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSentencePieceHandBuilt checks the BPE merge order, unknown runs and
// the whitespace options on a model built here, with ids worked out by
// hand from SentencePiece's rules.
func TestSentencePieceHandBuilt(t *testing.T) {
	bpe := pbVarintField(3, 2)
	pieces := []string{"▁", "a", "b", "c", "ab", "▁ab", "bc", "▁a"}
	// ids: <unk>0 <s>1 </s>2 ▁3 a4 b5 c6 ab7 ▁ab8 bc9 ▁a10
	cases := []struct {
		norm []byte
		text string
		want []uint32
	}{
		// "▁abc": pairs ▁a(-7) ab(-4) bc(-6): ab first, then ▁ab(-5).
		{nil, "abc", []uint32{8, 6}},
		{nil, "  abc   ", []uint32{8, 6}},
		// x and y are unknown: one <unk> for the run.
		{nil, "axyb", []uint32{10, 0, 5}},
		{pbVarintField(3, 0), "abc", []uint32{7, 6}},                                       // add_dummy_prefix=false
		{pbVarintField(4, 0), "a  b", []uint32{10, 3, 3, 5}},                               // remove_extra_whitespaces=false
		{append(pbVarintField(5, 0), pbVarintField(4, 0)...), "a b", []uint32{0, 4, 0, 5}}, // escape_whitespaces=false: " " is unknown
	}
	for i, c := range cases {
		tok, err := Load(writeTemp(t, "hand.model", tinySPM(pieces, bpe, c.norm)))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.EncodeOrdinary(c.text); !equalIDs(got, c.want) {
			t.Errorf("case %d %q: got %v, want %v", i, c.text, got, c.want)
		}
	}
	tok, err := Load(writeTemp(t, "hand.model", tinySPM(pieces, bpe, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if n, from := tok.DefaultEOS(); n != "</s>" || !strings.Contains(from, "SentencePiece") {
		t.Errorf("DefaultEOS = %q (%s), want </s> from the model", n, from)
	}
	if n, _ := tok.DefaultBOS(); n != "<s>" {
		t.Errorf("DefaultBOS = %q, want <s>", n)
	}
	if b, err := tok.Decode(tok.EncodeOrdinary("abc ab")); err != nil || string(b) != " abc ab" {
		t.Errorf("decode: %q, %v", b, err)
	}
}

func equalIDs(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSentencePieceHostile: crafted files are refused with the file and
// offset named, before any allocation their sizes ask for.
func TestSentencePieceHostile(t *testing.T) {
	good := tinySPM([]string{"a"}, nil, nil)
	huge := append([]byte{0x0a, 0x05, 0x0a, 0x03, 'a', 'b', 'c'}, pbField(3, pbField(2, []byte{0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}))...)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"trunc.model", good[:len(good)-3], "byte offset"},
		{"bigfield.model", append([]byte{0x0a, 0x0e, 0x0a, 0x05}, pbVarint(nil, 1<<62)...), "claims"},
		{"charsmap.model", huge, "precompiled_charsmap: trie size"},
		{"word.model", tinySPM([]string{"a"}, pbVarintField(3, 3), nil), "model_type 3 is not supported"},
		{"nounk.model", append(pbPiece("a", 0, spNormal), pbPiece("b", 0, spNormal)...), "no unknown piece"},
		{"bytes.model", tinySPM([]string{"a"}, pbVarintField(35, 1), nil), "byte piece <0x00> is missing"},
		{"dup.model", tinySPM([]string{"a", "a"}, nil, nil), `"a" is defined twice`},
	}
	for _, c := range cases {
		_, err := Load(writeTemp(t, c.name, c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: got %v, want an error naming the file and %q", c.name, err, c.want)
		}
	}
}

// FuzzSentencePieceLoad: any bytes either load or fail cleanly, and a
// loaded model encodes without panicking.
func FuzzSentencePieceLoad(f *testing.F) {
	f.Add(tinySPM([]string{"▁", "a", "ab"}, pbVarintField(3, 2), nil))
	f.Add(tinySPM([]string{"▁", "a", "ab"}, nil, pbField(2, []byte{8, 0, 0, 0, 0, 2, 0, 0, 0x61, 0x01, 0, 0, 'x', 0})))
	if b, err := os.ReadFile(spmModelPath("uni4k")); err == nil {
		f.Add(b[:4096])
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 || data[0] != 0x0a {
			return
		}
		p := filepath.Join(dir, "f.model")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := loadSentencePiece(p, data)
		if err != nil {
			return
		}
		for _, s := range []string{"", "a", "ab ab  x\xff", "ｆｕｌｌ　ab"} {
			m.EncodeOrdinary(s)
		}
	})
}
