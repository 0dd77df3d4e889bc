package ingest

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// countReader counts the bytes read from the file, so that the compressed
// position of the gzip decoder is pos - br.Buffered().
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// member marks where a gzip member starts: its compressed offset in the file
// and the decompressed offset of its first byte.
type member struct {
	comp, data int64
}

// streamError is a decompression failure at a known compressed offset.
type streamError struct {
	kind   string
	offset int64
	err    error
}

func (e *streamError) Error() string {
	return fmt.Sprintf("%s at offset %d: %v", e.kind, e.offset, e.err)
}
func (e *streamError) Unwrap() error { return e.err }

// source decompresses one file as a continuous stream, one gzip member at a
// time so that it knows where each member starts (for record offsets) and
// can resynchronise at the next member after a corrupt one.
type source struct {
	f    io.ReadSeeker
	path string
	cr   *countReader
	br   *bufio.Reader
	comp compression
	gz   *gzip.Reader
	zs   *zstd.Decoder
	// data counts decompressed bytes returned by Read.
	data int64
	// members holds the starts of members not yet passed by the consumer.
	members []member
	cur     member
	err     error
	// atStart is true until the first gzip header has been read.
	atStart bool
}

func newSource(f io.ReadSeeker, path string) (*source, error) {
	s := &source{f: f, path: path, atStart: true}
	s.cr = &countReader{r: f}
	s.br = bufio.NewReaderSize(s.cr, 256<<10)
	head, _ := s.br.Peek(4)
	s.comp = sniffCompression(head)
	switch s.comp {
	case compZstd:
		zs, err := zstd.NewReader(s.br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, fmt.Errorf("ingest: %s: zstd: %w", path, err)
		}
		s.zs = zs
	case compGzip:
		if err := s.startMember(); err != nil {
			// A corrupt first header: let Read report it, resync can skip it.
			s.err = err
		}
	}
	return s, nil
}

// pos is the compressed position of the next byte the decoder will read.
func (s *source) pos() int64 { return s.cr.n - int64(s.br.Buffered()) }

func (s *source) startMember() error {
	s.cur = member{comp: s.pos(), data: s.data}
	s.members = append(s.members, s.cur)
	var err error
	if s.gz == nil {
		s.gz, err = gzip.NewReader(s.br)
	} else {
		err = s.gz.Reset(s.br)
	}
	s.atStart = false
	if err != nil {
		return &streamError{kind: ErrGzipCorrupt, offset: s.cur.comp, err: fmt.Errorf("bad gzip header: %w", err)}
	}
	s.gz.Multistream(false)
	return nil
}

// Read returns decompressed bytes. A decompression failure is returned as a
// *streamError; call resync to go on.
func (s *source) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	switch s.comp {
	case compNone:
		n, err := s.br.Read(p)
		s.data += int64(n)
		return n, err
	case compZstd:
		n, err := s.zs.Read(p)
		s.data += int64(n)
		if err != nil && err != io.EOF {
			err = &streamError{kind: ErrZstdCorrupt, offset: 0, err: err}
			s.err = err
		}
		return n, err
	}
	for {
		n, err := s.gz.Read(p)
		s.data += int64(n)
		if err == nil {
			return n, nil
		}
		if err == io.EOF {
			// End of this member: another one follows unless the file ends.
			if _, perr := s.br.Peek(1); perr != nil {
				s.err = io.EOF
				return n, io.EOF
			}
			if err := s.startMember(); err != nil {
				s.err = err
				return n, nil
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		kind := ErrGzipCorrupt
		if errors.Is(err, io.ErrUnexpectedEOF) {
			kind = ErrGzipTruncated
		}
		s.err = &streamError{kind: kind, offset: s.cur.comp, err: err}
		return n, s.err
	}
}

// offsetOf maps a decompressed offset to the compressed offset of the gzip
// member holding it, and forgets members before it (the consumer only moves
// forward).
func (s *source) offsetOf(data int64) int64 {
	if s.comp != compGzip {
		if s.comp == compZstd {
			return 0
		}
		return data
	}
	i := 0
	for i+1 < len(s.members) && s.members[i+1].data <= data {
		i++
	}
	s.members = s.members[i:]
	if len(s.members) == 0 {
		return s.cur.comp
	}
	return s.members[0].comp
}

// resync skips to the next gzip member after the failed one. It returns
// io.EOF when none is left (or the stream cannot be resynchronised).
func (s *source) resync() error {
	se, ok := s.err.(*streamError)
	if !ok || s.comp != compGzip || se.kind == ErrGzipTruncated {
		// A truncated member means the file ended: nothing follows.
		if s.err == nil {
			s.err = io.EOF
		}
		return io.EOF
	}
	from := se.offset + 1
	for {
		off, err := s.findMagic(from)
		if err != nil {
			s.err = io.EOF
			return io.EOF
		}
		s.err = nil
		s.members = s.members[:0]
		if err := s.startMember(); err == nil {
			return nil
		}
		from = off + 1
	}
}

// findMagic seeks to the first gzip magic (1f 8b 08) at or after from and
// leaves the reader positioned on it.
func (s *source) findMagic(from int64) (int64, error) {
	if _, err := s.f.Seek(from, io.SeekStart); err != nil {
		return 0, err
	}
	s.cr.n = from
	s.br.Reset(s.cr)
	off := from
	for {
		p, err := s.br.Peek(3)
		if err != nil {
			return 0, err
		}
		if p[0] == 0x1f && p[1] == 0x8b && p[2] == 0x08 {
			return off, nil
		}
		if _, err := s.br.Discard(1); err != nil {
			return 0, err
		}
		off++
	}
}

func (s *source) close() {
	if s.zs != nil {
		s.zs.Close()
	}
}
