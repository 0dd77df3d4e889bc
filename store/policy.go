package store

import (
	"context"
	"time"
)

// DefaultIdleTimeout is the idle timeout of a context without a Policy.
const DefaultIdleTimeout = 60 * time.Second

// Policy is how a run reads http(s) and s3 inputs. It travels in the
// context (WithPolicy) rather than in package variables, so that two runs
// in one process (tests, a library user) each keep their own.
type Policy struct {
	// IdleTimeout is how long a read of a response body may wait for the
	// next bytes before the connection is dropped and the read resumes
	// with a ranged request (up to MaxAttempts times); 0 or less waits
	// forever (smelt ingest --idle-timeout).
	IdleTimeout time.Duration
	// AllowRedirectHosts lets an http(s) input redirect to another host
	// (Location with a different host or port; still never from https to
	// http). By default a redirect must keep the scheme and host:port of
	// the URL the user named (smelt ingest --allow-redirects).
	AllowRedirectHosts bool
}

// DefaultPolicy is the policy of a context that carries none.
func DefaultPolicy() Policy { return Policy{IdleTimeout: DefaultIdleTimeout} }

type policyKey struct{}

// WithPolicy returns ctx carrying p for the store calls made with it.
func WithPolicy(ctx context.Context, p Policy) context.Context {
	return context.WithValue(ctx, policyKey{}, p)
}

// PolicyOf returns the policy ctx carries, or DefaultPolicy.
func PolicyOf(ctx context.Context) Policy {
	if p, ok := ctx.Value(policyKey{}).(Policy); ok {
		return p
	}
	return DefaultPolicy()
}
