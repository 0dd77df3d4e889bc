package filter

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rule names accepted in Config.Rules.
const (
	RuleURL              = "url"
	RuleLanguage         = "language"
	RuleGopherRepetition = "gopher_repetition"
	RuleGopherQuality    = "gopher_quality"
	RuleC4               = "c4"
	RuleFineWeb          = "fineweb_quality"
)

// DefaultRules is the default rule order, FineWeb's: repetition, Gopher
// quality, C4, FineWeb quality (cheap URL and language checks go first when
// enabled).
var DefaultRules = []string{RuleGopherRepetition, RuleGopherQuality, RuleC4, RuleFineWeb}

// Config holds every rule's settings and the rules to run, in order. The
// zero value is not useful; start from DefaultConfig.
type Config struct {
	Rules            []string          `yaml:"rules"`
	URL              *URLBlock         `yaml:"url"`
	Language         *Language         `yaml:"language"`
	GopherRepetition *GopherRepetition `yaml:"gopher_repetition"`
	GopherQuality    *GopherQuality    `yaml:"gopher_quality"`
	C4               *C4               `yaml:"c4"`
	FineWeb          *FineWebQuality   `yaml:"fineweb_quality"`
	// Decontam and PII are off unless listed in Rules (decontam needs an
	// index from `smelt decontam index`).
	Decontam *Decontam `yaml:"decontam"`
	PII      *PII      `yaml:"pii"`
	// Annotate keeps every document and records, in its Meta under
	// "signals", the reason and value of every rule that would have dropped
	// it (all rules run, not only up to the first drop) and the classifier
	// keep policy's decision; the score is in the quality column. An
	// ablation arm then selects from those columns (drop_signals,
	// min_quality) without computing anything again.
	Annotate bool `yaml:"annotate,omitempty"`
	// OptOut (issue 28) is off unless listed in Rules; nil (and so absent
	// from fingerprints and the recipe's YAML) unless configured.
	OptOut *OptOut `yaml:"optout,omitempty" json:",omitempty"`
}

// DefaultConfig returns the published defaults for every rule.
func DefaultConfig() *Config {
	return &Config{
		Rules:            append([]string(nil), DefaultRules...),
		URL:              &URLBlock{},
		Language:         &Language{Languages: []string{"en"}, MinScore: 0.65},
		GopherRepetition: DefaultGopherRepetition(),
		GopherQuality:    DefaultGopherQuality(),
		C4:               DefaultC4(),
		FineWeb:          DefaultFineWebQuality(),
		Decontam:         DefaultDecontam(),
		PII:              DefaultPII(),
	}
}

// ParseConfig decodes YAML over the defaults. Unknown keys are errors.
func ParseConfig(data []byte) (*Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("filter config: %w", err)
	}
	return c, c.validate()
}

// YAML returns the configuration as YAML.
func (c *Config) YAML() ([]byte, error) { return yaml.Marshal(c) }

func (c *Config) validate() error {
	seen := map[string]bool{}
	for _, r := range c.Rules {
		if seen[r] {
			return fmt.Errorf("filter config: rule %q listed twice", r)
		}
		seen[r] = true
		switch r {
		case RuleURL, RuleLanguage, RuleGopherRepetition, RuleGopherQuality, RuleC4, RuleFineWeb, RuleOptOut:
		case RuleDecontam:
			if c.Decontam == nil {
				return fmt.Errorf("filter config: rule %q has no settings", r)
			}
			if err := c.Decontam.validate(); err != nil {
				return fmt.Errorf("filter config: %w", err)
			}
		case RulePII:
			if c.PII == nil {
				return fmt.Errorf("filter config: rule %q has no settings", r)
			}
			if err := c.PII.validate(); err != nil {
				return fmt.Errorf("filter config: %w", err)
			}
		default:
			return fmt.Errorf("filter config: unknown rule %q (known: %s)", r,
				strings.Join([]string{RuleURL, RuleLanguage, RuleGopherRepetition, RuleGopherQuality, RuleC4, RuleFineWeb, RuleDecontam, RulePII, RuleOptOut}, ", "))
		}
	}
	if c.FineWeb != nil && c.FineWeb.ShortLineLen < 0 {
		return fmt.Errorf("filter config: fineweb_quality.short_line_len must not be negative")
	}
	return nil
}

// Pipeline builds the configured rules, in order.
func (c *Config) Pipeline() (Pipeline, error) {
	if err := c.validate(); err != nil {
		return Pipeline{}, err
	}
	var p Pipeline
	for _, r := range c.Rules {
		var rule Rule
		switch r {
		case RuleURL:
			rule = ruleOrNil(c.URL)
		case RuleLanguage:
			rule = ruleOrNil(c.Language)
		case RuleGopherRepetition:
			rule = ruleOrNil(c.GopherRepetition)
		case RuleGopherQuality:
			rule = ruleOrNil(c.GopherQuality)
		case RuleC4:
			rule = ruleOrNil(c.C4)
		case RuleFineWeb:
			rule = ruleOrNil(c.FineWeb)
		case RuleDecontam:
			if err := c.Decontam.Open(); err != nil {
				return Pipeline{}, fmt.Errorf("filter config: %w", err)
			}
			rule = c.Decontam
		case RulePII:
			rule = c.PII
		case RuleOptOut:
			o := c.OptOut
			if o == nil {
				o = &OptOut{}
			}
			if err := o.Load(); err != nil {
				return Pipeline{}, fmt.Errorf("filter config: %w", err)
			}
			rule = o
		}
		if rule == nil {
			return Pipeline{}, fmt.Errorf("filter config: rule %q has no settings", r)
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, nil
}

// ResolvePaths makes the rules' relative file paths (the decontam index)
// relative to dir, as a recipe's inputs are.
func (c *Config) ResolvePaths(dir string) {
	c.OptOut.resolvePaths(dir)
	if c.Decontam != nil && c.Decontam.Index != "" && !filepath.IsAbs(c.Decontam.Index) {
		c.Decontam.Index = filepath.Join(dir, c.Decontam.Index)
	}
}

// ruleOrNil turns a nil rule pointer into a nil interface.
func ruleOrNil[T any, P interface {
	*T
	Rule
}](p P) Rule {
	if p == nil {
		return nil
	}
	return p
}
