package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Backend is one bucket of an S3 or S3-compatible store, through
// minio-go (chosen over gocloud.dev/blob by measurement: README,
// Dependencies).
type s3Backend struct {
	name string
	core minio.Core
}

var (
	clientMu sync.Mutex
	clients  = map[string]*minio.Client{}
	buckets  = map[string]*s3Backend{}
)

// splitBlobURL splits scheme://bucket/key into bucket and key.
func splitBlobURL(p string) (scheme, bucket, key string, err error) {
	scheme = Scheme(p)
	rest := p[len(scheme)+3:]
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", "", fmt.Errorf("%s: no bucket in the URL (want %s://BUCKET/KEY)", Redact(p), scheme)
	}
	return scheme, bucket, key, nil
}

func blobBackendFor(_ context.Context, scheme, p string) (*s3Backend, error) {
	if scheme != "s3" {
		hint := ""
		switch scheme {
		case "gs":
			hint = " (for Google Cloud Storage, use its S3-compatible endpoint: AWS_ENDPOINT_URL_S3=https://storage.googleapis.com with HMAC keys, and s3://BUCKET/KEY)"
		case "azblob", "az", "abfs", "abfss", "wasb", "wasbs":
			hint = " (Azure Blob Storage is not supported: it has no S3 API)"
		}
		return nil, fmt.Errorf("%s: %w %q%s; this build reads %s", Redact(p), ErrUnknownScheme, scheme, hint, schemes())
	}
	_, name, _, err := splitBlobURL(p)
	if err != nil {
		return nil, err
	}
	// One client per configuration (tests and long-lived callers may
	// change the environment); the key holds a hash of the secret, never
	// the secret, and stays in memory.
	cfg := strings.Join([]string{os.Getenv("AWS_ENDPOINT_URL_S3"), os.Getenv("AWS_ENDPOINT_URL"), os.Getenv("AWS_ACCESS_KEY_ID"),
		os.Getenv("AWS_PROFILE"), os.Getenv("AWS_REGION"), os.Getenv("AWS_DEFAULT_REGION"), fmt.Sprintf("%x", sha256.Sum256([]byte(os.Getenv("AWS_SECRET_ACCESS_KEY")+os.Getenv("AWS_SESSION_TOKEN"))))}, "\x00")
	clientMu.Lock()
	defer clientMu.Unlock()
	if b := buckets[cfg+"\x00"+name]; b != nil {
		return b, nil
	}
	c := clients[cfg]
	if c == nil {
		if c, err = newS3Client(); err != nil {
			return nil, err
		}
		clients[cfg] = c
	}
	b := &s3Backend{name: name, core: minio.Core{Client: c}}
	buckets[cfg+"\x00"+name] = b
	return b, nil
}

// newS3Client builds the S3 client from the standard AWS settings:
//   - credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
//     AWS_SESSION_TOKEN, then the shared credentials file
//     (AWS_SHARED_CREDENTIALS_FILE, default ~/.aws/credentials; profile
//     AWS_PROFILE), then the instance or container role (EC2 metadata, ECS,
//     web identity), unless AWS_EC2_METADATA_DISABLED=true; anonymous
//     access when none has any (public buckets);
//   - the endpoint from AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (an
//     S3-compatible store on premises), else AWS S3; with a custom
//     endpoint, buckets are addressed in the path, as such stores expect;
//   - the region from AWS_REGION or AWS_DEFAULT_REGION, else found per
//     bucket.
func newS3Client() (*minio.Client, error) {
	providers := []credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
	}
	if !strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		providers = append(providers, &credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}})
	}
	endpoint, secure, lookup := "s3.amazonaws.com", true, minio.BucketLookupAuto
	for _, v := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		raw := os.Getenv(v)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("s3: %s=%q is not an http(s)://HOST[:PORT] URL", v, raw)
		}
		endpoint, secure, lookup = u.Host, u.Scheme == "https", minio.BucketLookupPath
		break
	}
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	c, err := minio.New(endpoint, &minio.Options{
		Creds:        credentials.NewChainCredentials(providers),
		Secure:       secure,
		Region:       region,
		BucketLookup: lookup,
		Transport:    s3Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: client for %s: %w", endpoint, err)
	}
	return c, nil
}

// s3Transport is the connection pool for the store; like HTTPClient's, it
// asks for bytes as they are stored.
var s3Transport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	MaxIdleConnsPerHost:   64,
	IdleConnTimeout:       90 * time.Second,
	ResponseHeaderTimeout: 60 * time.Second,
	DisableCompression:    true,
}

// classify maps a store error to ErrNotFound / ErrDenied / transient, with
// a message that names the URL and says what to check, never a credential.
func (b *s3Backend) classify(op, u string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	ru := Redact(u)
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "NoSuchBucket":
		return fmt.Errorf("%s %s: %w: bucket %q does not exist", op, ru, ErrNotFound, b.name)
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("%s %s: %w: no such object", op, ru, ErrNotFound)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired",
		"AuthorizationHeaderMalformed", "InvalidSecurity",
		"XAdminUserNotFound": // versitygw's answer (a 404) for an unknown access key
		return fmt.Errorf("%s %s: %w: the store refused the credentials (%s); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials", op, ru, ErrDenied, resp.Code)
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		return fmt.Errorf("%s %s: %w: the credentials in use may not %s it (%s)", op, ru, ErrDenied, op, resp.Code)
	case "InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "RequestTimeTooSkewed":
		return &transientError{fmt.Errorf("%s %s: %s (%s)", op, ru, resp.Message, resp.Code)}
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", op, ru, ErrNotFound)
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("%s %s: %w (HTTP %d)", op, ru, ErrDenied, resp.StatusCode)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || transient(err) {
		return &transientError{fmt.Errorf("%s %s: %w", op, ru, err)}
	}
	return fmt.Errorf("%s %s: %w", op, ru, err)
}

func (b *s3Backend) key(u string) (string, error) {
	_, _, key, err := splitBlobURL(u)
	if err == nil && key == "" {
		err = fmt.Errorf("%s: no object key in the URL (want s3://BUCKET/KEY)", Redact(u))
	}
	return key, err
}

func (b *s3Backend) stat(ctx context.Context, u string) (Info, error) {
	key, err := b.key(u)
	if err != nil {
		return Info{}, err
	}
	oi, err := b.core.StatObject(ctx, b.name, key, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusNotFound {
			// A HEAD answer has no body, so a missing key, a missing
			// bucket and (on some stores) an unknown access key all look
			// alike: a GET says which.
			var opts minio.GetObjectOptions
			_ = opts.SetRange(0, 0)
			if body, _, _, gerr := b.core.GetObject(ctx, b.name, key, opts); gerr != nil {
				err = gerr
			} else {
				body.Close()
			}
		}
		return Info{}, b.classify("stat", u, err)
	}
	return Info{Path: u, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag}, nil
}

func (b *s3Backend) open(ctx context.Context, u string, off int64, want Info) (io.ReadCloser, error) {
	return b.openRange(ctx, u, off, -1, want)
}

func (b *s3Backend) openRange(ctx context.Context, u string, off, n int64, want Info) (io.ReadCloser, error) {
	key, err := b.key(u)
	if err != nil {
		return nil, err
	}
	var opts minio.GetObjectOptions
	if n >= 0 {
		err = opts.SetRange(off, off+n-1)
	} else if off > 0 {
		err = opts.SetRange(off, 0)
	}
	if err != nil {
		return nil, err
	}
	if want.ETag != "" {
		// The same version of the object, or a clear failure.
		if err := opts.SetMatchETag(want.ETag); err != nil {
			return nil, err
		}
	}
	body, _, _, err := b.core.GetObject(ctx, b.name, key, opts)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "PreconditionFailed" {
			return nil, fmt.Errorf("%s: %w (its ETag is no longer %s)", Redact(u), ErrChanged, want.ETag)
		}
		return nil, b.classify("read", u, err)
	}
	return body, nil
}

func (b *s3Backend) list(ctx context.Context, prefix string) ([]Info, error) {
	_, _, key, err := splitBlobURL(prefix)
	if err != nil {
		return nil, err
	}
	base := "s3://" + b.name + "/"
	var out []Info
	err = retry(ctx, prefix, "list", func() error {
		out = out[:0]
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range b.core.Client.ListObjects(lctx, b.name, minio.ListObjectsOptions{Prefix: key, Recursive: true}) {
			if oi.Err != nil {
				return b.classify("list", prefix, oi.Err)
			}
			if strings.HasSuffix(oi.Key, "/") {
				continue
			}
			out = append(out, Info{Path: base + oi.Key, Size: oi.Size, ModTime: oi.LastModified, ETag: oi.ETag})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// put uploads size bytes from r as one object; the store makes it visible
// only when the upload completes (a multipart upload cut short leaves
// nothing).
func (b *s3Backend) put(ctx context.Context, u string, r io.Reader, size int64) error {
	key, err := b.key(u)
	if err != nil {
		return err
	}
	_, err = b.core.Client.PutObject(ctx, b.name, key, r, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
	})
	return b.classify("write", u, err)
}

func (b *s3Backend) remove(ctx context.Context, u string) error {
	key, err := b.key(u)
	if err != nil {
		return err
	}
	return b.classify("delete", u, b.core.RemoveObject(ctx, b.name, key, minio.RemoveObjectOptions{}))
}
