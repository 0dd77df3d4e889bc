//go:build !amd64

package dedup

// pushAll folds the shingle hashes xs into sig.
func (h *Hasher) pushAll(sig, xs []uint64) { pushGeneric(sig, h.a, h.b, xs) }
