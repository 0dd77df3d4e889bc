package tokenize

import (
	"errors"
	"fmt"
	"io"
)

// EncodeStream encodes everything r yields with Encode's special-token
// semantics, calling emit with the ids of each chunk in order (emit may keep
// the slice only until it returns). Memory stays bounded: the input is cut
// into pieces of about chunkSize bytes (default 1 MiB) right after a newline
// followed by printable ASCII, where every pattern breaks anyway, so the ids
// are those of encoding the whole input at once (unless a special token
// itself contains such a newline). A disallowed special token is reported
// with its offset in the whole stream.
func (t *Tokenizer) EncodeStream(r io.Reader, allowed, disallowed []string, chunkSize int, emit func([]uint32) error) error {
	if chunkSize <= 0 {
		chunkSize = 1 << 20
	}
	var carry []byte
	var base int64
	ids := make([]uint32, 0, chunkSize/3)
	for {
		buf := make([]byte, len(carry)+chunkSize)
		copy(buf, carry)
		n, err := io.ReadFull(r, buf[len(carry):])
		buf = buf[:len(carry)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			return fmt.Errorf("tokenize: read at byte offset %d: %w", base+int64(len(buf)), err)
		}
		cut := len(buf)
		if !eof {
			if t.pipe != nil && !t.pipe.streamSafe {
				// A normalizer or the model sees whole segments (Llama 2's
				// Prepend, Gemma's whole-text BPE): there is no safe cut.
				carry = buf
				continue
			}
			if cut = safeCut(buf); cut == 0 {
				carry = buf
				continue
			}
		}
		chunk := string(buf[:cut])
		var encErr error
		ids, encErr = t.appendEncode(ids[:0], chunk, allowed, disallowed)
		if encErr != nil {
			var de *DisallowedSpecialError
			if errors.As(encErr, &de) {
				return &DisallowedSpecialError{Token: de.Token, Offset: int(base) + de.Offset}
			}
			return encErr
		}
		if err := emit(ids); err != nil {
			return err
		}
		base += int64(cut)
		carry = append(carry[:0:0], buf[cut:]...)
		if eof {
			return nil
		}
	}
}
