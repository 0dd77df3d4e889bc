package export

// Issue 26 W2 and C4: ids outside the vocabulary, an end-of-text id
// outside it and an absurd vocab_size are refused by every format, with an
// error naming the shard and the position, before anything is written.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/shards"
)

// editManifest rewrites dir's manifest.json through edit (as a user with a
// text editor would: the shards' sha256 stay valid).
func editManifest(t *testing.T, dir string, edit func(m map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, shards.ManifestName)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tokenDir writes a token directory of vocabulary 2048 whose ids run up
// to 2047.
func tokenDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	tok := shards.TokenizerInfo{Name: "test", RanksHash: "x", VocabSize: 2048, EOT: 0}
	err := writeTokenDir(dir, shards.TokenWriterOptions{Tokenizer: tok}, func(w *shards.TokenWriter) error {
		for d := range 20 {
			toks := make([]uint32, 50)
			for i := range toks {
				toks[i] = uint32((d*50 + i) * 7 % 2048)
			}
			if err := w.Write("doc"+string(rune('a'+d)), "src", toks); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestExportRefusesOutOfVocabularyIDs(t *testing.T) {
	for _, f := range []Format{FormatMegatron, FormatNanoGPT, FormatLLMC, FormatParquet} {
		dir := tokenDir(t)
		editManifest(t, dir, func(m map[string]any) { m["tokenizer"].(map[string]any)["vocab_size"] = 100 })
		in, err := OpenInput("", dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		_, err = Run(context.Background(), []*Input{in}, out, Options{Format: f})
		if err == nil || !strings.Contains(err.Error(), "outside the vocabulary of 100") ||
			!strings.Contains(err.Error(), "part-") || !strings.Contains(err.Error(), "position") || !strings.Contains(err.Error(), "document doca") {
			t.Errorf("%s: %v, want an out-of-vocabulary error naming the shard, document and position", f, err)
		}
	}
}

func TestExportRefusesBadTokenizer(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(tok map[string]any)
		want string
	}{
		{"eot outside", func(tok map[string]any) { tok["eot"] = 99999 }, "end-of-text id 99999"},
		{"vocab 2^31-1", func(tok map[string]any) { tok["vocab_size"] = 1<<31 - 1 }, "vocab_size 2147483647"},
		{"vocab 0", func(tok map[string]any) { tok["vocab_size"] = 0 }, "vocab_size 0"},
	} {
		dir := tokenDir(t)
		editManifest(t, dir, func(m map[string]any) { c.edit(m["tokenizer"].(map[string]any)) })
		_, err := OpenInput("", dir, 0)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v, want an error naming %s and %q", c.name, err, dir, c.want)
		}
		// An Input built without ReadManifest is refused by Run too.
		m := &shards.Manifest{Kind: shards.KindTokens, Tokenizer: &shards.TokenizerInfo{Name: "t", VocabSize: 100, EOT: 100}}
		_, err = Run(context.Background(), []*Input{{Name: "x", Dir: dir, Manifest: m}}, filepath.Join(t.TempDir(), "o"), Options{Format: FormatNanoGPT})
		if err == nil || !strings.Contains(err.Error(), "end-of-text id 100") {
			t.Errorf("Run with eot 100 of 100: %v", err)
		}
	}
}

// W5: a resumed export removes a stray file named like its outputs (a
// part-*.parquet glob would read it) and says so; other files are left.
func TestResumeRemovesStrays(t *testing.T) {
	dir := t.TempDir()
	tok := shards.TokenizerInfo{Name: "test", RanksHash: "x", VocabSize: 2048}
	err := writeTokenDir(dir, shards.TokenWriterOptions{Tokenizer: tok, TargetBytes: 100}, func(w *shards.TokenWriter) error {
		for d := range 6 {
			if err := w.Write(fmt.Sprintf("doc%d", d), "src", []uint32{1, 2, 3, uint32(d), 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	in, err := OpenInput("", dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Manifest.Shards) < 3 {
		t.Fatalf("%d shards", len(in.Manifest.Shards))
	}
	out := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Run(ctx, []*Input{in}, out, Options{Format: FormatParquet, Progress: func(done, total int64) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("first run: %v", err)
	}
	stray, other := filepath.Join(out, "part-00099.parquet"), filepath.Join(out, "notes.txt")
	for _, p := range []string{stray, other} {
		if err := os.WriteFile(p, []byte("not ours"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
	defer slog.SetDefault(prev)
	p, err := Run(context.Background(), []*Input{in}, out, Options{Format: FormatParquet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray %s still there (%v)", stray, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("%s removed: %v", other, err)
	}
	if !strings.Contains(logs.String(), "removed a file this export did not write") || !strings.Contains(logs.String(), stray) ||
		!strings.Contains(logs.String(), "left a file") {
		t.Errorf("log:\n%s", logs.String())
	}
	if len(p.Files) != len(in.Manifest.Shards) {
		t.Errorf("%d files for %d shards", len(p.Files), len(in.Manifest.Shards))
	}
}
