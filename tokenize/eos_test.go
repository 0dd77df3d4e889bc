package tokenize

import (
	"strings"
	"testing"
)

// TestBoundaryTokensNamed: --eos and --bos take a token of the tokenizer
// by its text, refuse one it does not have (naming it and the candidates),
// and --bos none turns the beginning token off.
func TestBoundaryTokensNamed(t *testing.T) {
	tok, err := Get("gpt2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.WithEOS("<|no_such|>"); err == nil || !strings.Contains(err.Error(), "<|no_such|>") || !strings.Contains(err.Error(), "<|endoftext|>") {
		t.Fatalf("an unknown --eos: %v", err)
	}
	if _, err := tok.WithBOS("<|no_such|>"); err == nil || !strings.Contains(err.Error(), "--bos") {
		t.Fatalf("an unknown --bos: %v", err)
	}
	e, err := tok.WithEOS("<|endoftext|>")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := e.EOT(); !ok || id != 50256 {
		t.Fatalf("eos <|endoftext|> is %d (%v), want 50256", id, ok)
	}
	b, err := e.WithBOS(NoBOS)
	if err != nil {
		t.Fatal(err)
	}
	if b.BOSName() != "" {
		t.Fatalf("--bos none leaves %q", b.BOSName())
	}
}
