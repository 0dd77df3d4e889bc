package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/smelt-dev/smelt/ingest"
	"github.com/smelt-dev/smelt/internal/testutil"
	"github.com/smelt-dev/smelt/shards"
	"github.com/smelt-dev/smelt/store"
)

func TestS3IngestSameShardsAsLocal(t *testing.T) {
	s3 := testutil.StartS3(t, "crawl")
	dir, local := copySamples(t)
	for _, p := range local {
		s3.Put(t, "crawl", "cc/"+filepath.Base(p), p)
	}
	want, got := t.TempDir(), t.TempDir()
	ingestDir(t, []string{dir}, want) // sorted, like the listing
	// The prefix is listed in sorted order, like a local directory.
	gst := ingestDir(t, []string{"s3://crawl/cc/"}, got)
	sameShards(t, want, got)
	m, err := shards.ReadManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Inputs) != len(local) || !strings.HasPrefix(m.Inputs[0].Path, "s3://crawl/cc/") || m.Inputs[0].Bytes == 0 {
		t.Fatalf("manifest inputs: %+v", m.Inputs)
	}
	raw, _ := os.ReadFile(filepath.Join(got, shards.ManifestName))
	if strings.Contains(string(raw), s3.SecretKey) || strings.Contains(string(raw), s3.AccessKey) {
		t.Fatal("the manifest holds a credential")
	}
	if gst.Out.Docs == 0 {
		t.Fatal("no documents")
	}
	// A glob over keys, and a paths list relative to the bucket.
	files, err := ingest.ExpandInputs(context.Background(), []string{"s3://crawl/cc/*.warc.gz"})
	if err != nil || len(files) != 3 {
		t.Fatalf("glob: %v %v", files, err)
	}
	s3.PutBytes(t, "crawl", "lists/warc.paths", []byte("cc/"+filepath.Base(local[1])+"\n\ncc/"+filepath.Base(local[0])+"\n"))
	files, err = ingest.ExpandInputs(context.Background(), []string{"s3://crawl/lists/warc.paths"})
	if err != nil || len(files) != 2 || files[0] != "s3://crawl/cc/"+filepath.Base(local[1]) {
		t.Fatalf("paths list: %v %v", files, err)
	}
}

func TestS3ListThousandObjects(t *testing.T) {
	s3 := testutil.StartS3(t, "many")
	for i := 999; i >= 0; i-- {
		s3.PutBytes(t, "many", fmt.Sprintf("p/%04d.txt", i), []byte(fmt.Sprintf("document %d\n", i)))
	}
	s3.PutBytes(t, "many", "other/x.txt", []byte("not listed"))
	files, err := ingest.ExpandInputs(context.Background(), []string{"s3://many/p/"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1000 {
		t.Fatalf("listed %d objects, want 1000", len(files))
	}
	for i, f := range files {
		if want := fmt.Sprintf("s3://many/p/%04d.txt", i); f != want {
			t.Fatalf("object %d is %s, want %s", i, f, want)
		}
	}
	// "p" without the slash names the same "directory".
	if again, err := ingest.ExpandInputs(context.Background(), []string{"s3://many/p"}); err != nil || len(again) != 1000 {
		t.Fatalf("s3://many/p: %d, %v", len(again), err)
	}
}

func TestS3Errors(t *testing.T) {
	fastRetries(t)
	s3 := testutil.StartS3(t, "present")
	s3.PutBytes(t, "present", "a.jsonl", []byte(`{"id":"1","text":"hello"}`+"\n"))
	ctx := context.Background()

	_, err := ingest.ExpandInputs(context.Background(), []string{"s3://present/missing.warc.gz"})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "no such object") || !strings.Contains(err.Error(), "s3://present/missing.warc.gz") {
		t.Fatalf("missing key: %v", err)
	}
	_, err = ingest.ExpandInputs(context.Background(), []string{"s3://absent-bucket/a.jsonl"})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `bucket "absent-bucket" does not exist`) {
		t.Fatalf("missing bucket: %v", err)
	}
	_, err = ingest.ExpandInputs(context.Background(), []string{"s3://absent-bucket/prefix/"})
	if !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), `bucket "absent-bucket" does not exist`) {
		t.Fatalf("missing bucket, listing: %v", err)
	}
	if _, err := ingest.ExpandInputs(context.Background(), []string{"s3://present/nothing/"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty prefix: %v", err)
	}

	s3.UseCredentials(t, "wrongaccesskey", "wrongsecretvalue1234")
	_, err = store.Stat(ctx, "s3://present/a.jsonl")
	if !errors.Is(err, store.ErrDenied) || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Fatalf("bad access key: %v", err)
	}
	_, err = ingest.ExpandInputs(context.Background(), []string{"s3://present/"})
	if !errors.Is(err, store.ErrDenied) {
		t.Fatalf("bad access key, listing: %v", err)
	}
	if strings.Contains(err.Error(), "wrongsecretvalue1234") {
		t.Fatalf("the error shows the secret: %v", err)
	}
	s3.UseCredentials(t, s3.AccessKey, "wrongsecretvalue1234")
	if _, err := store.Stat(ctx, "s3://present/a.jsonl"); !errors.Is(err, store.ErrDenied) || strings.Contains(err.Error(), "wrongsecretvalue1234") {
		t.Fatalf("bad secret: %v", err)
	}
}

// TestS3IngestOutput writes ingest's output to the store: objects, then
// the manifest; a second run finds it finished; another job is refused.
func TestS3IngestOutput(t *testing.T) {
	testutil.StartS3(t, "out")
	t.Setenv("SMELT_STAGING", t.TempDir())
	_, local := copySamples(t)
	want := t.TempDir()
	ingestDir(t, local, want)

	ctx := context.Background()
	run := func(inputs []string) error {
		o, err := store.PrepareOutput(ctx, "s3://out/shards/cc/")
		if err != nil {
			return err
		}
		files, err := ingest.ExpandInputs(context.Background(), inputs)
		if err != nil {
			return err
		}
		if _, err := ingest.Run(ctx, files, o.Dir, ingest.Options{Source: "cc", Workers: 2, TargetBytes: 256 << 10}); err != nil {
			return o.Err(err)
		}
		return o.Publish(ctx)
	}
	if err := run(local); err != nil {
		t.Fatal(err)
	}
	got, err := store.Fetch(ctx, "s3://out/shards/cc", nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.SameTree(t, want, got)
	for _, name := range []string{"_checkpoint.json", ".remote"} {
		if _, err := store.Stat(ctx, "s3://out/shards/cc/"+name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%s was uploaded: %v", name, err)
		}
	}
	// From a fresh staging directory (another machine): the store's
	// manifest says it is done, so nothing is redone.
	t.Setenv("SMELT_STAGING", t.TempDir())
	if err := run(local); err != nil {
		t.Fatal(err)
	}
	// Another job into the same URL is refused, naming the URL.
	t.Setenv("SMELT_STAGING", t.TempDir())
	err = run(local[:1])
	if err == nil || !strings.Contains(err.Error(), "s3://out/shards/cc") || !strings.Contains(err.Error(), "different ingest run") {
		t.Fatalf("another job into a finished output: %v", err)
	}
}

// BenchmarkIngestS3VsLocal ingests the same bytes from local files and
// from the local S3 server, side by side in one run:
//
//	go test ./store -run '^$' -bench IngestS3VsLocal -benchtime 3x -cpu 2
//
// warc: real Common Crawl and Dolma WARC samples (per-record gzip, HTML
// extraction), repeated to about 3 MB; jsonl: real cc_net JSONL documents,
// repeated to about 6 MB, where reading is a larger share of the work.
func BenchmarkIngestS3VsLocal(b *testing.B) {
	s3 := testutil.StartS3(b, "bench")
	dir := b.TempDir()
	sets := map[string][]string{
		"warc":  {"warc/dolma_sample-0000.warc.gz", "warc/dolma_sample-0001.warc.gz", "warc/resiliparse_CC-MAIN-2020-34_warcfile.warc.gz"},
		"jsonl": {"jsonl/dolma_cc_en_head-0091.jsonl", "jsonl/dolma_cc_en_head-0174.jsonl"},
	}
	for _, name := range []string{"warc", "jsonl"} {
		var data []byte
		for len(data) < map[string]int{"warc": 3 << 20, "jsonl": 6 << 20}[name] {
			for _, s := range sets[name] {
				d, err := os.ReadFile(testutil.SharedData(b, s))
				if err != nil {
					b.Fatal(err)
				}
				data = append(data, d...)
			}
		}
		file := "crawl." + name
		if name == "warc" {
			file += ".gz"
		}
		local := filepath.Join(dir, file)
		if err := os.WriteFile(local, data, 0o644); err != nil {
			b.Fatal(err)
		}
		s3.PutBytes(b, "bench", file, data)
		for _, src := range []struct{ kind, path string }{{"local", local}, {"s3", "s3://bench/" + file}} {
			b.Run(name+"/"+src.kind, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for i := 0; i < b.N; i++ {
					out := filepath.Join(b.TempDir(), "out")
					if _, err := ingest.Run(context.Background(), []string{src.path}, out, ingest.Options{Source: "cc"}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestS3DroppedConnectionsResume puts a proxy that cuts every response
// after 16 KiB between the client and the S3 server: ingest resumes each
// GET with a ranged one and gives the local files' shards.
func TestS3DroppedConnectionsResume(t *testing.T) {
	fastRetries(t)
	s3 := testutil.StartS3(t, "crawl")
	dir, local := copySamples(t)
	for _, p := range local {
		s3.Put(t, "crawl", "cc/"+filepath.Base(p), p)
	}
	target, err := url.Parse(s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var drops atomic.Int32
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the signature covers the host the client used
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && !strings.Contains(r.URL.RawQuery, "list-type") && r.URL.RawQuery != "location=" {
			fs := &flakyServer{}
			w = &dropWriter{ResponseWriter: w, left: 16 << 10, s: fs}
			defer func() { drops.Add(fs.drops.Load()) }()
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()
	s3.Endpoint = srv.URL
	s3.UseCredentials(t, s3.AccessKey, s3.SecretKey)
	logs := captureLog(t)
	want, got := t.TempDir(), t.TempDir()
	ingestDir(t, []string{dir}, want)
	ingestDir(t, []string{"s3://crawl/cc/"}, got)
	sameShards(t, want, got)
	if drops.Load() < 10 || !strings.Contains(logs.String(), "resuming with a range request") {
		t.Fatalf("%d connections dropped; log:\n%.1500s", drops.Load(), logs.String())
	}
	t.Logf("%d S3 responses cut short and resumed", drops.Load())
}
