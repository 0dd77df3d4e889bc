package trainer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/smelt-dev/smelt/tokenize"
)

// ErrNoTokenizer is returned (wrapped) by LoadTokenizer for a checkpoint that
// neither embeds its tokenizer nor names a built-in one.
var ErrNoTokenizer = errors.New("the checkpoint does not embed its tokenizer")

// TokenizerInfo returns the DataInfo tokenizer fields for tok, read from
// path (a built-in name or a tokenizer file): its ranks hash, and for a file
// its name and bytes to embed in checkpoints (tokenize's Portable form).
func TokenizerInfo(tok *tokenize.Tokenizer, path string) (hash, file string, data []byte, err error) {
	if tokenize.IsBuiltin(path) {
		return tok.RanksHash(), "", nil, nil
	}
	// Portable: a tiktoken rank file loaded with its own pattern and
	// specials travels with them (the rank file alone would load without).
	file, data, err = tok.Portable(path)
	if err != nil {
		return "", "", nil, fmt.Errorf("trainer: tokenizer: %w", err)
	}
	return tok.RanksHash(), file, data, nil
}

// LoadTokenizer returns the tokenizer a checkpoint was trained with: the one
// embedded in it, or the built-in encoding it names. Its ranks hash is
// checked against the one recorded.
func (ck *Checkpoint) LoadTokenizer() (*tokenize.Tokenizer, error) {
	var tok *tokenize.Tokenizer
	var err error
	switch {
	case ck.TokenizerData != nil:
		tok, err = loadTokenizerBytes(ck.TokenizerFile, ck.TokenizerData)
	case tokenize.IsBuiltin(ck.Tokenizer):
		tok, err = tokenize.Get(ck.Tokenizer)
	default:
		return nil, fmt.Errorf("trainer: tokenizer %q: %w", ck.Tokenizer, ErrNoTokenizer)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: the checkpoint's tokenizer %q: %w", ck.Tokenizer, err)
	}
	if ck.TokenizerHash != "" && tok.RanksHash() != ck.TokenizerHash {
		return nil, fmt.Errorf("trainer: the checkpoint's tokenizer %q has ranks hash %s, the checkpoint records %s", ck.Tokenizer, tok.RanksHash(), ck.TokenizerHash)
	}
	return tok, nil
}

// loadTokenizerBytes loads a tokenizer file held in memory. tokenize reads
// files by path (the name and format come from it), so the bytes go to a
// private temporary directory under their own name.
func loadTokenizerBytes(name string, data []byte) (*tokenize.Tokenizer, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." {
		return nil, fmt.Errorf("embedded tokenizer file name %q is not a plain file name", name)
	}
	dir, err := os.MkdirTemp("", "smelt-tokenizer-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	return tokenize.Load(path)
}
