package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Retry policy: attempts per operation and the backoff between them.
var (
	// MaxAttempts is how often an operation is tried before its error is
	// returned (transient errors only; a missing object fails at once).
	MaxAttempts = 8
	// BaseBackoff is the first wait; it doubles up to MaxBackoff, with
	// jitter.
	BaseBackoff = 200 * time.Millisecond
	MaxBackoff  = 10 * time.Second
)

// transientError marks an error worth retrying (a 5xx or 429 answer, a
// dropped connection).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// transient reports whether err is worth another try.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrDenied) || errors.Is(err, ErrUnknownScheme) || errors.Is(err, ErrChanged) ||
		errors.Is(err, ErrRetry) || errors.Is(err, ErrRedirect) || errors.Is(err, ErrForbiddenAddress) {
		return false
	}
	var te *transientError
	if errors.As(err, &te) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func backoff(attempt int) time.Duration {
	d := BaseBackoff << min(attempt, 16)
	if d > MaxBackoff || d <= 0 {
		d = MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retry runs op until it succeeds, fails for good, or MaxAttempts is spent.
func retry(ctx context.Context, u, what string, op func() error) error {
	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		if attempt > 0 {
			d := backoff(attempt - 1)
			slog.Warn("store: retrying", "op", what, "url", Redact(u), "attempt", attempt+1, "wait", d.Round(time.Millisecond), "err", err)
			if serr := sleep(ctx, d); serr != nil {
				return serr
			}
		}
		if err = op(); err == nil || !transient(err) {
			return err
		}
	}
	return fmt.Errorf("%s %s: giving up after %d attempts: %w: %w", what, Redact(u), MaxAttempts, ErrRetry, err)
}

// ErrChanged reports an object that changed while it was being read.
var ErrChanged = errors.New("object changed while it was read")

// ErrRetry marks a read that failed for a reason outside the object's
// bytes: a transient failure that outlasted the retries, a server that
// answered the wrong range or cut a body short. The input is not corrupt;
// running again may well succeed.
var ErrRetry = errors.New("the object could not be read whole (not a damaged input: run again to retry)")

// IsRetryable reports whether err says an input could not be read as it
// was when the run started (it changed, or the transfer failed for good),
// rather than that the input's bytes are damaged: a caller fails the run
// instead of counting the input as broken, so that running again retries.
func IsRetryable(err error) bool { return errors.Is(err, ErrChanged) || errors.Is(err, ErrRetry) }

// errIdle is the failure of a body that sent nothing for its Policy's
// IdleTimeout.
type errIdle struct{ d time.Duration }

func (e errIdle) Error() string   { return fmt.Sprintf("no bytes received for %s (idle timeout)", e.d) }
func (e errIdle) Timeout() bool   { return true }
func (e errIdle) Temporary() bool { return true }

// idleBody is a response body whose every Read must make progress within d:
// a timer armed around each Read cancels the request's context, which
// unblocks the Read, and the Read reports errIdle (a transient error).
type idleBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	d      time.Duration
	timer  *time.Timer
	fired  atomic.Bool
}

func newIdleBody(rc io.ReadCloser, cancel context.CancelFunc, d time.Duration) io.ReadCloser {
	if d <= 0 {
		return struct {
			io.Reader
			io.Closer
		}{rc, closeBoth{rc, cancel}}
	}
	b := &idleBody{rc: rc, cancel: cancel, d: d}
	b.timer = time.AfterFunc(d, func() {
		b.fired.Store(true)
		cancel()
	})
	b.timer.Stop()
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.fired.Load() {
		return 0, &transientError{errIdle{b.d}}
	}
	b.timer.Reset(b.d)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && b.fired.Load() {
		return n, &transientError{errIdle{b.d}}
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}

type closeBoth struct {
	rc     io.Closer
	cancel context.CancelFunc
}

func (c closeBoth) Close() error {
	err := c.rc.Close()
	c.cancel()
	return err
}

// Object is an open remote object. Read streams it with one request,
// resuming with a ranged request from the byte already delivered when the
// connection drops; Seek and ReadAt use ranged requests. Memory held is the
// connection's buffers only.
type Object struct {
	ctx  context.Context
	b    backend
	url  string
	info Info
	pos  int64
	body io.ReadCloser
	// resumes counts the reads resumed after a failure.
	resumes atomic.Int64
	// probed: the body of an object of unknown size ended and the end is
	// being confirmed by a request from that offset.
	probed bool
}

// Resumes is the number of requests made to resume a read after a failure.
func (o *Object) Resumes() int64 { return o.resumes.Load() }

// Size is the object's length in bytes.
func (o *Object) Size() int64 { return o.info.Size }

// Info describes the object as it was when opened.
func (o *Object) Info() Info { return o.info }

// Read reads the next bytes of the object.
func (o *Object) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if o.info.Size >= 0 && o.pos >= o.info.Size {
		return 0, io.EOF
	}
	var failure error
	for attempt := 0; ; attempt++ {
		if o.body == nil {
			if attempt > 0 && failure != nil {
				if attempt >= MaxAttempts {
					return 0, fmt.Errorf("read %s at byte %d: giving up after %d attempts: %w: %w", Redact(o.url), o.pos, MaxAttempts, ErrRetry, failure)
				}
				d := backoff(attempt - 1)
				slog.Warn("store: read failed, resuming with a range request", "url", Redact(o.url), "offset", o.pos,
					"attempt", attempt+1, "wait", d.Round(time.Millisecond), "err", failure)
				if err := sleep(o.ctx, d); err != nil {
					return 0, err
				}
				o.resumes.Add(1)
			}
			rctx, cancel := context.WithCancel(o.ctx)
			body, err := o.b.open(rctx, o.url, o.pos, o.info)
			if err != nil {
				cancel()
				if o.ctx.Err() != nil {
					return 0, o.ctx.Err()
				}
				if !transient(err) {
					return 0, err
				}
				failure = err
				continue
			}
			o.body = newIdleBody(body, cancel, PolicyOf(o.ctx).IdleTimeout)
		}
		n, err := o.body.Read(p)
		o.pos += int64(n)
		if n > 0 {
			o.probed = false
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && o.info.Size >= 0 && o.pos >= o.info.Size {
			return n, io.EOF
		}
		if err == io.EOF && o.info.Size < 0 {
			// The size is unknown, so an end of body may be a connection
			// cut short: ask for the bytes from here once more; only an
			// empty answer (416, or nothing more) is the end.
			o.body.Close()
			o.body = nil
			if o.probed {
				return n, io.EOF
			}
			o.probed = true
			if n > 0 {
				return n, nil
			}
			continue
		}
		if o.ctx.Err() != nil {
			o.body.Close()
			o.body = nil
			return n, o.ctx.Err()
		}
		// Cut short: a dropped connection, or an EOF before the end.
		o.body.Close()
		o.body = nil
		if err == io.EOF {
			err = &transientError{fmt.Errorf("body ended at byte %d of %d: %w", o.pos, o.info.Size, io.ErrUnexpectedEOF)}
		}
		if !transient(err) {
			return n, fmt.Errorf("read %s at byte %d: %w", Redact(o.url), o.pos, err)
		}
		failure = err
		if n > 0 {
			// Deliver what arrived; the next Read resumes.
			o.resumes.Add(1)
			slog.Warn("store: connection dropped, resuming with a range request", "url", Redact(o.url), "offset", o.pos, "err", err)
			return n, nil
		}
	}
}

// Seek moves the read position; the next Read starts a ranged request.
func (o *Object) Seek(off int64, whence int) (int64, error) {
	var to int64
	switch whence {
	case io.SeekStart:
		to = off
	case io.SeekCurrent:
		to = o.pos + off
	case io.SeekEnd:
		if o.info.Size < 0 {
			return 0, fmt.Errorf("seek %s: size unknown", Redact(o.url))
		}
		to = o.info.Size + off
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if to < 0 {
		return 0, fmt.Errorf("seek %s: negative position", Redact(o.url))
	}
	if to != o.pos && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.pos = to
	return to, nil
}

// ReadAt reads len(p) bytes at off with a ranged request of its own; it
// does not move the Read position.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset", Redact(o.url))
	}
	if o.info.Size >= 0 && off >= o.info.Size {
		return 0, io.EOF
	}
	if o.info.Size >= 0 && off+int64(len(p)) > o.info.Size {
		p = p[:o.info.Size-off]
	}
	end := off + int64(len(p)) // stop the range at the end of p
	sub := &Object{ctx: o.ctx, b: rangeLimited{o.b, end}, url: o.url, info: o.info, pos: off}
	sub.info.Size = end
	n, err := io.ReadFull(sub, p)
	sub.Close()
	o.resumes.Add(sub.resumes.Load())
	if err == nil && o.info.Size >= 0 && off+int64(n) >= o.info.Size {
		err = io.EOF
	}
	return n, err
}

// Close releases the connection.
func (o *Object) Close() error {
	if o.body != nil {
		err := o.body.Close()
		o.body = nil
		return err
	}
	return nil
}

// rangeLimited asks the backend for bytes up to end only, so a ReadAt
// transfers no more than it needs.
type rangeLimited struct {
	backend
	end int64
}

func (r rangeLimited) open(ctx context.Context, u string, off int64, want Info) (io.ReadCloser, error) {
	if rb, ok := r.backend.(rangeBackend); ok {
		return rb.openRange(ctx, u, off, r.end-off, want)
	}
	body, err := r.backend.open(ctx, u, off, want)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(body, r.end-off), body}, nil
}

// rangeBackend can ask for a bounded range.
type rangeBackend interface {
	openRange(ctx context.Context, u string, off, n int64, want Info) (io.ReadCloser, error)
}
