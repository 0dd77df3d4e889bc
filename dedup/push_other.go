//go:build !amd64

package dedup

// useAVX512 is false off amd64: there is only the portable loop.
var useAVX512 = false

// pushAll folds the shingle hashes xs into sig.
func (h *Hasher) pushAll(sig, xs []uint64) { pushGeneric(sig, h.a, h.b, xs) }
