package store

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/data/x.warc.gz", "/data/x.warc.gz"},
		{"s3://b/k.warc.gz", "s3://b/k.warc.gz"},
		{"https://b.s3.amazonaws.com/a/k.jsonl?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef",
			"https://b.s3.amazonaws.com/a/k.jsonl"},
		{"https://h/k?x-amz-security-token=SECRET&versionId=3", "https://h/k?versionId=3"},
		{"https://h/k?AWSAccessKeyId=AKIA&Expires=1700000000&Signature=abc%3D", "https://h/k"},
		{"https://h/k?Expires=1700000000&page=2", "https://h/k?Expires=1700000000&page=2"}, // not signed: no secret
		{"https://h/k?GoogleAccessId=x&Expires=1&Signature=y", "https://h/k"},
		{"https://h/k?X-Goog-Signature=y&X-Goog-Credential=z&alt=media", "https://h/k?alt=media"},
		{"https://acct.blob.core.windows.net/c/k?sv=2022-11-02&ss=b&srt=o&sp=r&se=2025-01-01T00%3A00%3A00Z&st=2024&spr=https&sig=abc", "https://acct.blob.core.windows.net/c/k"},
		{"https://user:pass@h/k?token=t&a=1#frag", "https://h/k?a=1"},
		{"https://h/k?ACCESS_TOKEN=t&Api-Key=k&KEY=k&client_secret=s&password=p&b=2", "https://h/k?b=2"},
		{"https://h/k?%58-Amz-Signature=x", "https://h/k"}, // escaped name
	} {
		got := Redact(c.in)
		if got != c.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
		for _, secret := range []string{"deadbeef", "SECRET", "AKIA", "pass", "abc", "client_secret"} {
			if strings.Contains(got, secret) {
				t.Errorf("Redact(%q) = %q keeps %q", c.in, got, secret)
			}
		}
	}
	// The identity is stable across signing again.
	a := Redact("https://h/p/k.warc.gz?X-Amz-Date=20250101T000000Z&X-Amz-Signature=aaa")
	b := Redact("https://h/p/k.warc.gz?X-Amz-Date=20250102T000000Z&X-Amz-Signature=bbb")
	if a != b {
		t.Errorf("re-signed URL changes identity: %q vs %q", a, b)
	}
	if !HasCredentials("https://h/k?X-Amz-Signature=a") || HasCredentials("https://h/k?a=1") || HasCredentials("/tmp/x?sig=1") {
		t.Error("HasCredentials")
	}
}
