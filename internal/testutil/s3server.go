package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// S3Server is a real S3-compatible server (versitygw's POSIX gateway) on
// loopback, started for one test.
type S3Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint string
	// Root holds one directory per bucket.
	Root string
	// AccessKey and SecretKey are the server's root credentials.
	AccessKey, SecretKey string
}

// VersityGW finds the versitygw binary (PATH, then $GOPATH/bin), or skips
// the test with a message saying how to install it (.ci/run does).
func VersityGW(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, d := range filepath.SplitList(gopath) {
		p := filepath.Join(d, "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("versitygw not installed (an S3-compatible server for the object-store tests): go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	return ""
}

// StartS3 starts versitygw on a free loopback port with the given buckets
// (directories under Root) and points the standard AWS environment
// variables at it for the rest of the test (t.Setenv: not for parallel
// tests). The server stops when the test ends.
func StartS3(t testing.TB, buckets ...string) *S3Server {
	t.Helper()
	bin := VersityGW(t)
	s := &S3Server{Root: t.TempDir(), AccessKey: "smelttestaccess", SecretKey: "smelttestsecret0123456789"}
	for _, b := range buckets {
		if err := os.MkdirAll(filepath.Join(s.Root, b), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "--quiet",
		"posix", "--nometa", s.Root)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Endpoint = "http://" + addr
	s.UseCredentials(t, s.AccessKey, s.SecretKey)
	return s
}

// UseCredentials sets the AWS environment for this server with the given
// keys (wrong ones to test refusals) for the rest of the test.
func (s *S3Server) UseCredentials(t testing.TB, access, secret string) {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL_S3", s.Endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(s.Root, "no-credentials-file"))
}

// Put copies a local file into the store as bucket/key, through the
// file system behind the gateway.
func (s *S3Server) Put(t testing.TB, bucket, key, src string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	s.PutBytes(t, bucket, key, data)
}

// PutBytes stores data as bucket/key.
func (s *S3Server) PutBytes(t testing.TB, bucket, key string, data []byte) {
	t.Helper()
	p := filepath.Join(s.Root, bucket, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// URL is s3://bucket/key.
func (s *S3Server) URL(bucket, key string) string { return fmt.Sprintf("s3://%s/%s", bucket, key) }
