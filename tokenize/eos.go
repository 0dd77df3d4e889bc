package tokenize

import (
	"fmt"
	"strings"
)

// boundary is a document-boundary token chosen by the user ("none": no
// token).
type boundary struct {
	text string
	id   uint32
	none bool
}

// NoBOS, given to WithBOS, turns off a beginning-of-text token the
// tokenizer's own configuration would add.
const NoBOS = "none"

// tokenID returns the id of a special token, a non-special added token or a
// whole vocabulary entry named text.
func (t *Tokenizer) tokenID(text string) (uint32, bool) {
	if id, ok := t.specials[text]; ok {
		return id, true
	}
	for id, s := range t.added {
		if s == text {
			return id, true
		}
	}
	if t.pipe != nil && t.pipe.spm != nil {
		id, ok := t.pipe.spm.vocab[text]
		if !ok {
			id, ok = t.pipe.spm.reserved[text]
		}
		return uint32(id), ok
	}
	if t.pipe != nil && t.pipe.bpe != nil {
		id, ok := t.pipe.bpe.vocab[text]
		return id, ok
	}
	if t.pipe != nil && t.pipe.uni != nil {
		id, ok := t.pipe.uni.vocab[text]
		return id, ok
	}
	if t.pipe == nil || t.pipe.bpe == nil {
		if r, ok := t.ranks.get(text); ok && len(text) > 1 {
			return t.id(r), true
		}
	}
	return 0, false
}

// DefaultEOS returns the end-of-text token the tokenizer's own files name,
// and where the name comes from: <|endoftext|> when the vocabulary has it
// (GPT-2, cl100k, o200k, Qwen), else the eos_token of a tokenizer_config.json
// beside a tokenizer.json, else the token the post-processor's template
// ends a sequence with, else a SentencePiece model's eos piece. "" when none
// is known.
func (t *Tokenizer) DefaultEOS() (name, from string) {
	if _, ok := t.specials[EndOfText]; ok {
		return EndOfText, "the vocabulary's " + EndOfText
	}
	if n := t.bounds.configEOS; n != "" {
		if _, ok := t.tokenID(n); ok {
			return n, "tokenizer_config.json's eos_token"
		}
	}
	if n := t.bounds.templateEOS; n != "" {
		if _, ok := t.tokenID(n); ok {
			return n, "tokenizer.json's post_processor"
		}
	}
	if n := t.bounds.modelEOS; n != "" {
		if _, ok := t.tokenID(n); ok {
			return n, "the SentencePiece model's eos_id"
		}
	}
	return "", ""
}

// DefaultBOS returns the beginning-of-text token the tokenizer's own files
// add to every sequence: the first token of the post-processor's template
// (Llama 2, Gemma), else the bos_token of a tokenizer_config.json that sets
// add_bos_token. "" when none.
func (t *Tokenizer) DefaultBOS() (name, from string) {
	if n := t.bounds.templateBOS; n != "" {
		if _, ok := t.tokenID(n); ok {
			return n, "tokenizer.json's post_processor"
		}
	}
	if n := t.bounds.configBOS; n != "" && t.bounds.configAddBOS {
		if _, ok := t.tokenID(n); ok {
			return n, "tokenizer_config.json's bos_token (add_bos_token)"
		}
	}
	if n := t.bounds.modelBOS; n != "" {
		if _, ok := t.tokenID(n); ok {
			return n, "the SentencePiece model's bos_id"
		}
	}
	return "", ""
}

// EOT returns the end-of-text id that ends every document: the token given
// to WithEOS, else DefaultEOS's, and whether there is one.
func (t *Tokenizer) EOT() (uint32, bool) {
	if t.eos != nil {
		return t.eos.id, true
	}
	if n, _ := t.DefaultEOS(); n != "" {
		return t.tokenID(n)
	}
	return 0, false
}

// BOS returns the beginning-of-text id that starts every document: the
// token given to WithBOS, else DefaultBOS's, and whether there is one.
func (t *Tokenizer) BOS() (uint32, bool) {
	if t.bos != nil {
		return t.bos.id, !t.bos.none
	}
	if n, _ := t.DefaultBOS(); n != "" {
		return t.tokenID(n)
	}
	return 0, false
}

// EOSName returns the text of EOT's token ("" when there is none).
func (t *Tokenizer) EOSName() string {
	if t.eos != nil {
		return t.eos.text
	}
	n, _ := t.DefaultEOS()
	return n
}

// BOSName returns the text of BOS's token ("" when there is none).
func (t *Tokenizer) BOSName() string {
	if t.bos != nil {
		if t.bos.none {
			return ""
		}
		return t.bos.text
	}
	n, _ := t.DefaultBOS()
	return n
}

// WithEOS returns a copy of t whose end-of-text token is text ("" keeps
// the default). The copy shares t's tables.
func (t *Tokenizer) WithEOS(text string) (*Tokenizer, error) {
	if text == "" {
		return t, nil
	}
	id, ok := t.tokenID(text)
	if !ok {
		return nil, fmt.Errorf("tokenize: --eos %q is not a token of %s; %s", text, t.name, t.candidates())
	}
	c := *t
	c.eos = &boundary{text: text, id: id}
	return &c, nil
}

// WithBOS returns a copy of t whose beginning-of-text token is text (""
// keeps the default, NoBOS turns it off).
func (t *Tokenizer) WithBOS(text string) (*Tokenizer, error) {
	if text == "" {
		return t, nil
	}
	c := *t
	if text == NoBOS {
		c.bos = &boundary{none: true}
		return &c, nil
	}
	id, ok := t.tokenID(text)
	if !ok {
		return nil, fmt.Errorf("tokenize: --bos %q is not a token of %s; %s", text, t.name, t.candidates())
	}
	c.bos = &boundary{text: text, id: id}
	return &c, nil
}

// CheckEOT returns an error naming candidate tokens when t has no
// end-of-text token to end documents with.
func (t *Tokenizer) CheckEOT() error {
	if _, ok := t.EOT(); ok {
		return nil
	}
	return fmt.Errorf("tokenize: tokenizer %s names no end-of-text token to end documents with: choose one with --eos TOKEN (recipe: tokenizer: {eos: TOKEN}); %s", t.name, t.candidates())
}

// candidates lists the special tokens likeliest to end a document.
func (t *Tokenizer) candidates() string {
	all := sortedSpecials(t.specials)
	var likely []string
	for _, s := range all {
		l := strings.ToLower(s)
		if strings.Contains(l, "end") || strings.Contains(l, "eos") || strings.Contains(l, "eot") || s == "</s>" || strings.Contains(l, "sep") {
			likely = append(likely, s)
		}
	}
	if len(likely) == 0 {
		likely = all
	}
	if len(likely) == 0 {
		return "it has no special tokens"
	}
	if len(likely) > 12 {
		likely = append(likely[:12], "...")
	}
	return "candidates: " + strings.Join(likely, " ")
}

// GetOrLoadWith is GetOrLoad followed by WithEOS(eos) and WithBOS(bos).
func GetOrLoadWith(nameOrPath, eos, bos string) (*Tokenizer, error) {
	t, err := GetOrLoad(nameOrPath)
	if err != nil {
		return nil, err
	}
	if t, err = t.WithEOS(eos); err != nil {
		return nil, err
	}
	return t.WithBOS(bos)
}

// IsPipeline reports a tokenizer.json run through the full pipeline
// (normalizers, pre-tokenizers, added tokens) rather than one known split
// pattern; Pattern is then meaningless.
func (t *Tokenizer) IsPipeline() bool { return t.pipe != nil }
