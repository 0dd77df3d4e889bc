package tokenize

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bundleKey marks a tiktoken bundle: a JSON object holding a tiktoken rank
// file with the split pattern and special tokens it was loaded with, which
// the rank file alone does not carry.
const bundleKey = "smelt_tiktoken_bundle"

// ttSource is what a tiktoken rank file loaded with a pattern or specials
// needs to be loaded again without them: its bytes and the resolved options.
type ttSource struct {
	ranks    []byte
	pattern  string // the split regex (a named pattern resolved)
	specials map[string]uint32
	bounds   hfBoundaries
}

type bundleJSON struct {
	Version  int               `json:"smelt_tiktoken_bundle"`
	Name     string            `json:"name"`
	Pattern  string            `json:"pattern"`
	Specials map[string]uint32 `json:"specials"`
	// The document boundaries its specials file named (a
	// tokenizer_config.json's bos_token and eos_token).
	ConfigBOS    string `json:"config_bos,omitempty"`
	ConfigEOS    string `json:"config_eos,omitempty"`
	ConfigAddBOS bool   `json:"config_add_bos,omitempty"`
	TemplateBOS  string `json:"template_bos,omitempty"`
	TemplateEOS  string `json:"template_eos,omitempty"`
	Ranks        string `json:"ranks"`
}

// Portable returns a file name and the bytes that Load alone reads back to
// t's ids, for a checkpoint or any other place that keeps a tokenizer
// without its command line: the file at path as it is, or, for a tiktoken
// rank file loaded with its own pattern or specials (Options), a bundle
// (NAME.smelt-tiktoken.json) holding the rank file, the pattern and the
// special tokens. The ranks hash of what Load returns is t's.
func (t *Tokenizer) Portable(path string) (name string, data []byte, err error) {
	if t.tt == nil {
		data, err = os.ReadFile(path)
		if err != nil {
			return "", nil, fmt.Errorf("tokenize: %w", err)
		}
		return filepath.Base(path), data, nil
	}
	b := bundleJSON{Version: 1, Name: t.name, Pattern: t.tt.pattern, Specials: t.tt.specials,
		ConfigBOS: t.tt.bounds.configBOS, ConfigEOS: t.tt.bounds.configEOS, ConfigAddBOS: t.tt.bounds.configAddBOS,
		TemplateBOS: t.tt.bounds.templateBOS, TemplateEOS: t.tt.bounds.templateEOS, Ranks: string(t.tt.ranks)}
	if b.Specials == nil {
		b.Specials = map[string]uint32{}
	}
	data, err = json.Marshal(b)
	if err != nil {
		return "", nil, fmt.Errorf("tokenize: %s: bundle: %w", path, err)
	}
	return safeFileName(t.name) + ".smelt-tiktoken.json", data, nil
}

// safeFileName keeps a tokenizer name usable as a plain file name.
func safeFileName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
	if s == "" || s == "." || s == ".." {
		return "tokenizer"
	}
	return s
}

// loadBundle reads what Portable writes for a tiktoken rank file.
func loadBundle(path string, data []byte) (*Tokenizer, error) {
	var b bundleJSON
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("tokenize: %s: tiktoken bundle: %w", path, err)
	}
	if b.Version != 1 {
		return nil, fmt.Errorf("tokenize: %s: tiktoken bundle version %d is not supported (smelt reads 1)", path, b.Version)
	}
	if b.Pattern == "" || b.Ranks == "" {
		return nil, fmt.Errorf("tokenize: %s: tiktoken bundle without its pattern or ranks", path)
	}
	if b.Specials == nil {
		b.Specials = map[string]uint32{}
	}
	o := Options{Pattern: b.Pattern, specials: b.Specials, name: b.Name,
		bounds: hfBoundaries{configBOS: b.ConfigBOS, configEOS: b.ConfigEOS, configAddBOS: b.ConfigAddBOS,
			templateBOS: b.TemplateBOS, templateEOS: b.TemplateEOS}}
	return loadTiktoken(path, []byte(b.Ranks), o)
}
