package ingest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// memberBufMax bounds the decompressed gzip member kept in memory while its
// CRC is checked. A larger member is checked in a first pass that throws
// its bytes away and then decompressed again to be served (or, for an input
// that cannot seek, spooled to a temporary file), so memory stays bounded
// whatever the member's size.
const memberBufMax = 2 << 20

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

// member is one gzip member: where it starts in the file (comp), its
// decompressed extent [data, end), the white space it starts with (lead)
// and whether a WARC header follows that white space (warc). All of it is
// known before the member's first byte is served, because a member is
// checked whole first.
type member struct {
	comp, data, end, lead int64
	warc                  bool
	truncated             bool // the file ends inside it (its records are counted as truncated)
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

// serving modes of a gzip member.
const (
	serveBuf    = iota // from the verified bytes in memory
	serveStream        // decompressing again (a large member, verified in a first pass)
	serveSpool         // from a temporary file (a large member of an input that cannot seek)
)

// source decompresses one file as a continuous stream, one gzip member at a
// time, so that it knows where each member starts and ends (for record
// offsets and framing) and can resynchronise at the next member after a
// corrupt one. No byte of a gzip member is served before the member's
// CRC-32 and length have been checked: a corrupt member yields nothing.
type source struct {
	f        inputFile
	path     string
	seekable bool
	verify   bool
	cr       *countReader
	br       *bufio.Reader
	comp     compression
	gz       *gzip.Reader
	zs       *zstd.Decoder
	// data counts decompressed bytes returned by Read.
	data int64
	// members holds the members not yet passed by the consumer.
	members []member
	cur     member
	err     error
	// The member being served.
	mode   int
	buf    []byte
	bufPos int
	spool  *os.File
	after  error // reported once the member's bytes are served (a truncation)
	// Framing counters, independent of what the readers make of the bytes:
	// failures reported (corrupt or truncated members), members seen that
	// start with a WARC header. counted is the compressed offset up to which
	// members have been counted (a rewind decompresses some again).
	failures, warcMembers int64
	counted, lastFailure  int64
}

func newSource(in *input, path string) (*source, error) { return openSource(in, path, true) }

// openSource starts decompressing an input. verify=false skips the
// checking of gzip members (for sniffing the first bytes of a file).
func openSource(in *input, path string, verify bool) (*source, error) {
	s := &source{f: in.f, path: path, verify: verify, counted: -1, lastFailure: -1}
	// Seek goes back in f; it can stand for in.r only while nothing has
	// buffered bytes of f ahead of it (sniffStream).
	s.seekable = in.seekable && in.r == io.Reader(in.f)
	s.cr = &countReader{r: in.r}
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
			// A corrupt first member: let Read report it, resync can skip it.
			s.setErr(err)
		}
	}
	return s, nil
}

// setErr records a stream failure; each one reported counts once.
func (s *source) setErr(err error) {
	if se, ok := err.(*streamError); ok && se.offset > s.lastFailure {
		// Counted once even when a rewind decompresses the member again.
		s.lastFailure = se.offset
		s.failures++
	}
	s.err = err
}

// pos is the compressed position of the next byte the decoder will read.
func (s *source) pos() int64 { return s.cr.n - int64(s.br.Buffered()) }

// startMember decompresses and checks the member at the current position.
// On success the member's bytes are ready to be served; a truncated member
// is served and then reported (what arrived before the cut is what the
// compressor wrote); a corrupt member is reported and serves nothing.
func (s *source) startMember() error {
	s.closeSpool()
	comp := s.pos()
	s.cur = member{comp: comp, data: s.data}
	corrupt := func(err error) error {
		kind := ErrGzipCorrupt
		if errors.Is(err, io.ErrUnexpectedEOF) {
			kind = ErrGzipTruncated
		}
		return &streamError{kind: kind, offset: comp, err: err}
	}
	var err error
	if s.gz == nil {
		s.gz, err = gzip.NewReader(s.br)
	} else {
		err = s.gz.Reset(s.br)
	}
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return &streamError{kind: ErrGzipTruncated, offset: comp, err: fmt.Errorf("gzip header cut off: %w", err)}
		}
		return &streamError{kind: ErrGzipCorrupt, offset: comp, err: fmt.Errorf("bad gzip header: %w", err)}
	}
	s.gz.Multistream(false)
	if !s.verify {
		s.mode = serveStream
		s.cur.end = -1
		s.members = append(s.members, s.cur)
		return nil
	}
	s.after = nil
	s.buf, err = readUpTo(s.buf[:0], s.gz, memberBufMax+1)
	size := int64(len(s.buf))
	truncated := false
	switch {
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return corrupt(err)
	case err != nil:
		truncated = true
	}
	s.mode, s.bufPos = serveBuf, 0
	if size > memberBufMax && !truncated {
		// A large member: check it whole before serving any of it.
		big := s.buf
		head := append([]byte(nil), s.buf[:min(len(s.buf), 64<<10)]...)
		defer func() { s.buf = big[:0] }()
		if s.seekable {
			n, err := io.Copy(io.Discard, s.gz)
			size += n
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return corrupt(err)
			}
			truncated = err != nil // the second pass reports it
			// Decompress it again to serve it.
			if _, err := s.f.Seek(comp, io.SeekStart); err != nil {
				return &streamError{kind: ErrGzipCorrupt, offset: comp, err: err}
			}
			s.cr.n = comp
			s.br.Reset(s.cr)
			if err := s.gz.Reset(s.br); err != nil {
				return corrupt(err)
			}
			s.gz.Multistream(false)
			s.mode = serveStream
		} else {
			tmp, err := os.CreateTemp("", "smelt-member-*")
			if err != nil {
				return &streamError{kind: ErrGzipCorrupt, offset: comp, err: fmt.Errorf("spooling a large gzip member: %w", err)}
			}
			os.Remove(tmp.Name()) // the open file stays readable; nothing is left behind
			s.spool = tmp
			_, werr := tmp.Write(s.buf)
			n, err := io.Copy(tmp, s.gz)
			size += n
			if werr != nil {
				return &streamError{kind: ErrGzipCorrupt, offset: comp, err: fmt.Errorf("spooling a large gzip member: %w", werr)}
			}
			if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
				return corrupt(err)
			}
			truncated = err != nil
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return &streamError{kind: ErrGzipCorrupt, offset: comp, err: err}
			}
			s.mode = serveSpool
		}
		s.buf = head
	}
	if truncated {
		s.after = &streamError{kind: ErrGzipTruncated, offset: comp, err: io.ErrUnexpectedEOF}
	}
	lead := len(s.buf) - len(bytes.TrimLeft(s.buf, " \t\r\n"))
	s.cur.end = s.data + size
	s.cur.lead = int64(lead)
	s.cur.warc = bytes.HasPrefix(s.buf[lead:], []byte("WARC/"))
	s.cur.truncated = truncated
	if comp > s.counted {
		s.counted = comp
		if s.cur.warc && !truncated {
			s.warcMembers++
		}
	}
	s.members = append(s.members, s.cur)
	return nil
}

// readUpTo appends from r to b until max bytes, the end of r or an error;
// io.EOF is not an error.
func readUpTo(b []byte, r io.Reader, max int) ([]byte, error) {
	for len(b) < max {
		if len(b) == cap(b) {
			// Grow by doubling from 64 KiB, then straight to max, so that
			// the member buffer costs little more than max in all.
			c := min(max, 2*cap(b)+64<<10)
			if c > 512<<10 {
				c = max
			}
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		n, err := r.Read(b[len(b):min(cap(b), max)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

func (s *source) closeSpool() {
	if s.spool != nil {
		s.spool.Close()
		s.spool = nil
	}
}

// Read returns decompressed bytes. A decompression failure is returned as a
// *streamError; call resync to go on.
func (s *source) Read(p []byte) (int, error) {
	for {
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
				s.setErr(&streamError{kind: ErrZstdCorrupt, offset: 0, err: err})
				err = s.err
			}
			return n, err
		}
		var n int
		var err error
		switch s.mode {
		case serveBuf:
			n = copy(p, s.buf[s.bufPos:])
			s.bufPos += n
			if s.bufPos == len(s.buf) {
				err = io.EOF
			}
		case serveStream:
			n, err = s.gz.Read(p)
		case serveSpool:
			n, err = s.spool.Read(p)
		}
		s.data += int64(n)
		if err == nil {
			return n, nil
		}
		if err != io.EOF {
			// Only a member decompressed a second time gets here: the
			// file changed under us, or it is truncated.
			kind := ErrGzipCorrupt
			if errors.Is(err, io.ErrUnexpectedEOF) {
				kind = ErrGzipTruncated
			}
			s.setErr(&streamError{kind: kind, offset: s.cur.comp, err: err})
			if n > 0 {
				return n, nil
			}
			return 0, s.err
		}
		// End of this member.
		s.closeSpool()
		if s.after != nil {
			s.setErr(s.after)
			s.after = nil
		} else if _, perr := s.br.Peek(1); perr != nil {
			s.err = io.EOF
		} else if err := s.startMember(); err != nil {
			s.setErr(err)
		}
		if n > 0 {
			return n, nil
		}
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

// memberAt returns the gzip member that holds the decompressed offset data
// (the member must have been started: a byte at data has been buffered).
func (s *source) memberAt(data int64) (member, bool) {
	if s.comp != compGzip || !s.verify {
		return member{}, false
	}
	for i := len(s.members) - 1; i >= 0; i-- {
		if m := s.members[i]; m.data <= data && data < m.end {
			return m, true
		}
	}
	return member{}, false
}

// canRewind reports whether rewind works on this input.
func (s *source) canRewind() bool { return s.seekable && s.verify }

// rewind goes back to decompressed offset data, which must be at or after
// the start of the oldest member not yet passed (see offsetOf).
func (s *source) rewind(data int64) error {
	if !s.canRewind() {
		return errors.New("input cannot seek")
	}
	s.closeSpool()
	s.after = nil
	var from, skip int64
	switch s.comp {
	case compNone:
		from = data
	case compGzip:
		i := len(s.members) - 1
		for i > 0 && s.members[i].data > data {
			i--
		}
		if i < 0 || s.members[i].data > data {
			return fmt.Errorf("rewind to %d: member not known", data)
		}
		m := s.members[i]
		s.members = s.members[:i]
		from, skip = m.comp, data-m.data
		s.data = m.data
	case compZstd:
		skip = data
		s.data = 0
	}
	if _, err := s.f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	s.cr.n = from
	s.br.Reset(s.cr)
	s.err = nil
	switch s.comp {
	case compNone:
		s.data = data
		return nil
	case compZstd:
		if err := s.zs.Reset(s.br); err != nil {
			return err
		}
	case compGzip:
		if err := s.startMember(); err != nil {
			s.setErr(err)
			return err
		}
	}
	_, err := io.CopyN(io.Discard, s, skip)
	return err
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

// findMagic moves to the first gzip magic (1f 8b 08) at or after from (or,
// in an input that cannot seek, at or after the current position) and
// leaves the reader positioned on it.
func (s *source) findMagic(from int64) (int64, error) {
	if s.seekable {
		if _, err := s.f.Seek(from, io.SeekStart); err != nil {
			return 0, err
		}
		s.cr.n = from
		s.br.Reset(s.cr)
	} else if s.pos() < from {
		if _, err := s.br.Discard(int(from - s.pos())); err != nil {
			return 0, err
		}
	}
	off := s.pos()
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
	s.closeSpool()
	if s.zs != nil {
		s.zs.Close()
	}
}
