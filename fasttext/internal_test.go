package fasttext

import (
	"math/rand/v2"
	"testing"
)

// The division-free remainder equals % for every bucket count fastText
// models use and for random and extreme 32-bit hashes.
func TestBucketMod(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, b := range []uint32{1, 2, 3, 7, 1000, 50000, 1 << 16, 1 << 20, 2000000, 10000000, 1<<31 - 1, 1 << 31, 1<<32 - 1} {
		d := &Dictionary{}
		d.setArgs(&Args{Bucket: int32(b)})
		d.bucket = b // 1<<31 and above do not fit Args' int32
		d.bucketM = ^uint64(0)/uint64(b) + 1
		for i := 0; i < 200000; i++ {
			x := r.Uint32()
			switch i {
			case 0:
				x = 0
			case 1:
				x = 1<<32 - 1
			case 2:
				x = b - 1
			case 3:
				x = b
			}
			if got, want := d.mod(x), x%b; got != want {
				t.Fatalf("%d mod %d = %d, want %d", x, b, got, want)
			}
		}
	}
}

// fastText's hash sign-extends bytes >= 0x80 (C++ chars are signed).
func TestHashString(t *testing.T) {
	// FNV-1a of "a": (2166136261 ^ 0x61) * 16777619 mod 2^32.
	if got := hashString("a"); got != 0xe40c292c {
		t.Errorf("hash(a) = %#x", got)
	}
	// 0xc3 hashes as 0xffffffc3, not 0xc3.
	h := uint32(2166136261)
	h = (h ^ 0xffffffc3) * 16777619
	if got := hashString("\xc3"); got != h {
		t.Errorf("hash(0xc3) = %#x, want %#x", got, h)
	}
}
