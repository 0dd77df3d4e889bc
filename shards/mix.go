package shards

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// MixFile is the YAML shape of a mix file:
//
//	sources:
//	  - {name: common_crawl, path: shards/cc, weight: 0.60}
//	  - {name: wikipedia, path: shards/wiki, weight: 0.03}
//
// Relative paths are relative to the mix file's directory. Unknown keys are
// errors.
type MixFile struct {
	Sources []MixFileSource `yaml:"sources"`
}

// MixFileSource is one entry of a mix file.
type MixFileSource struct {
	Name   string  `yaml:"name"`
	Path   string  `yaml:"path"`
	Weight float64 `yaml:"weight"`
}

// Mix is a set of token-shard directories with normalised sampling weights.
// All sources share one tokenizer.
type Mix struct {
	// Path is the mix file, or the directory for OpenMixDir.
	Path    string
	Sources []*MixSource
	tok     TokenizerInfo
}

// MixSource is one source of a Mix.
type MixSource struct {
	Name string
	// Dir is the token-shard directory.
	Dir string
	// Weight is the normalised sampling weight (the weights sum to 1).
	Weight float64
	// Manifest is the directory's manifest.
	Manifest *Manifest
}

// Tokens is the number of tokens the source holds.
func (s *MixSource) Tokens() int64 { return s.Manifest.Totals.Tokens }

// Docs is the number of documents the source holds.
func (s *MixSource) Docs() int64 { return s.Manifest.Totals.Rows }

// VocabSize is the vocabulary size of the mix's tokenizer.
func (m *Mix) VocabSize() int { return m.tok.VocabSize }

// EOT is the end-of-text id that ends every document.
func (m *Mix) EOT() uint32 { return m.tok.EOT }

// Tokenizer is the name of the mix's tokenizer.
func (m *Mix) Tokenizer() string { return m.tok.Name }

// TokenizerInfo describes the mix's tokenizer in full.
func (m *Mix) TokenizerInfo() TokenizerInfo { return m.tok }

// LoadMix reads a YAML mix file strictly and opens every source's manifest.
func LoadMix(path string) (*Mix, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mix file: %w", err)
	}
	mf, err := ParseMixFile(data)
	if err != nil {
		return nil, fmt.Errorf("mix file %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for i := range mf.Sources {
		if p := mf.Sources[i].Path; p != "" && !filepath.IsAbs(p) {
			mf.Sources[i].Path = filepath.Join(base, p)
		}
	}
	m, err := newMix(path, mf.Sources)
	if err != nil {
		return nil, fmt.Errorf("mix file %s: %w", path, err)
	}
	return m, nil
}

// ParseMixFile decodes and checks a mix file's YAML. Unknown keys, missing
// names or paths, repeated names and non-positive weights are errors that
// name the line or the source.
func ParseMixFile(data []byte) (*MixFile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var mf MixFile
	if err := dec.Decode(&mf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty mix file: want a sources list")
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: a second YAML document; a mix file holds one", extra.Line)
	}
	if len(mf.Sources) == 0 {
		return nil, errors.New("no sources")
	}
	seen := map[string]bool{}
	for i, s := range mf.Sources {
		if s.Name == "" {
			return nil, fmt.Errorf("source %d: no name", i+1)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("source %q listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Path == "" {
			return nil, fmt.Errorf("source %q: no path", s.Name)
		}
		if !(s.Weight > 0) || math.IsInf(s.Weight, 0) {
			return nil, fmt.Errorf("source %q: weight %v must be a positive number", s.Name, s.Weight)
		}
	}
	return &mf, nil
}

// OpenMixDir opens one token-shard directory as a mix of one source with
// weight 1, named after the directory.
func OpenMixDir(dir string) (*Mix, error) {
	return newMix(dir, []MixFileSource{{Name: filepath.Base(filepath.Clean(dir)), Path: dir, Weight: 1}})
}

func newMix(path string, srcs []MixFileSource) (*Mix, error) {
	m := &Mix{Path: path}
	var sum float64
	for _, s := range srcs {
		sum += s.Weight
	}
	for i, s := range srcs {
		if fi, err := os.Stat(s.Path); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("source %q: path %s is not a directory", s.Name, s.Path)
		}
		man, err := ReadManifest(s.Path)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", s.Name, err)
		}
		if man.Kind != KindTokens || man.Tokenizer == nil {
			return nil, fmt.Errorf("source %q: %s holds %s shards, not tokens (run smelt tokenize)", s.Name, s.Path, man.Kind)
		}
		if man.Totals.Tokens <= 0 {
			return nil, fmt.Errorf("source %q: %s holds no tokens", s.Name, s.Path)
		}
		if i == 0 {
			m.tok = *man.Tokenizer
		} else if *man.Tokenizer != m.tok {
			return nil, fmt.Errorf("source %q: tokenizer %s (vocab %d, eot %d, ranks %s) differs from source %q's %s (vocab %d, eot %d, ranks %s)",
				s.Name, man.Tokenizer.Name, man.Tokenizer.VocabSize, man.Tokenizer.EOT, man.Tokenizer.RanksHash,
				srcs[0].Name, m.tok.Name, m.tok.VocabSize, m.tok.EOT, m.tok.RanksHash)
		}
		m.Sources = append(m.Sources, &MixSource{Name: s.Name, Dir: s.Path, Weight: s.Weight / sum, Manifest: man})
	}
	if m.tok.VocabSize <= 0 || uint64(m.tok.EOT) >= uint64(m.tok.VocabSize) {
		return nil, fmt.Errorf("%s: tokenizer %s: end-of-text id %d outside the vocabulary of %d", path, m.tok.Name, m.tok.EOT, m.tok.VocabSize)
	}
	return m, nil
}

// PlanRow is one source's line in a mix plan.
type PlanRow struct {
	Name string
	// Available is the number of tokens the source holds.
	Available int64
	// Weight is the normalised sampling weight.
	Weight float64
	// Drawn is the number of tokens the source contributes to the budget.
	Drawn int64
	// Epochs is Drawn / Available: how many times the source is seen.
	Epochs float64
}

// RepeatWarnEpochs is the number of passes over a source above which a plan
// warns. Muennighoff et al. (2023, "Scaling Data-Constrained Language
// Models") found up to about 4 epochs worth nearly as much as fresh data,
// with returns falling off quickly beyond.
const RepeatWarnEpochs = 4.0

// Plan computes, for a budget of total tokens, what each source
// contributes and how many epochs of it that is (the table of GPT-3's
// "Datasets used to train GPT-3").
func (m *Mix) Plan(total int64) []PlanRow {
	rows := make([]PlanRow, len(m.Sources))
	for i, s := range m.Sources {
		drawn := int64(math.Round(s.Weight * float64(total)))
		rows[i] = PlanRow{Name: s.Name, Available: s.Tokens(), Weight: s.Weight, Drawn: drawn,
			Epochs: float64(drawn) / float64(s.Tokens())}
	}
	return rows
}

// WritePlan prints a plan as a table, followed by a warning for every
// source that would be repeated more than RepeatWarnEpochs times. It
// returns the number of warnings.
func WritePlan(out io.Writer, rows []PlanRow) (int, error) {
	// Numbers align right; names are padded to one width so that they
	// stay aligned left.
	width := len("source")
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	pad := func(s string) string { return s + strings.Repeat(" ", width-len(s)) }
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\ttokens available\tweight in mix\ttokens drawn\tepochs\t\n", pad("source"))
	var avail, drawn int64
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.1f%%\t%s\t%.2f\t\n", pad(r.Name), FormatTokens(r.Available), 100*r.Weight, FormatTokens(r.Drawn), r.Epochs)
		avail += r.Available
		drawn += r.Drawn
	}
	fmt.Fprintf(tw, "%s\t%s\t100.0%%\t%s\t%.2f\t\n", pad("total"), FormatTokens(avail), FormatTokens(drawn), float64(drawn)/float64(max(avail, 1)))
	if err := tw.Flush(); err != nil {
		return 0, err
	}
	warnings := 0
	for _, r := range rows {
		if r.Epochs > RepeatWarnEpochs {
			warnings++
			fmt.Fprintf(out, "warning: source %q would be repeated %.1f times (%s drawn from %s): beyond about %.0f epochs repeated tokens are worth much less than new ones; lower its weight or add data\n",
				r.Name, r.Epochs, FormatTokens(r.Drawn), FormatTokens(r.Available), RepeatWarnEpochs)
		}
	}
	return warnings, nil
}

// ParseTokens parses a token count such as "300B", "1.5T", "20M", "64k"
// or "12345". Suffixes K, M, B (or G) and T are powers of 1000, in either case.
func ParseTokens(s string) (int64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty token count")
	}
	mult := 1.0
	switch t[len(t)-1] {
	case 'k', 'K':
		mult = 1e3
	case 'm', 'M':
		mult = 1e6
	case 'b', 'B', 'g', 'G':
		mult = 1e9
	case 't', 'T':
		mult = 1e12
	}
	if mult != 1 {
		t = t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("token count %q: want a number with an optional K, M, B or T suffix", s)
	}
	n := v * mult
	if n <= 0 || n >= math.MaxInt64 {
		return 0, fmt.Errorf("token count %q out of range", s)
	}
	return int64(math.Round(n)), nil
}

// FormatTokens writes a token count the way GPT-3's table does: 410B,
// 19B, 3.1B, 45M.
func FormatTokens(n int64) string {
	f := float64(n)
	for _, u := range []struct {
		v float64
		s string
	}{{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}} {
		if f >= u.v {
			x := f / u.v
			if x >= 10 {
				return fmt.Sprintf("%.0f%s", x, u.s)
			}
			return fmt.Sprintf("%.1f%s", x, u.s)
		}
	}
	return strconv.FormatInt(n, 10)
}
