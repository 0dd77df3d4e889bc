package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/smelt-dev/smelt/filter"
	"github.com/smelt-dev/smelt/shards"
	"github.com/spf13/cobra"
)

func newFilterCmd() *cobra.Command {
	var (
		out, rules, configPath, langs, blockList, badWords, classifier, keep, ftLabel string
		langMin                                                                       float64
		seed                                                                          uint64
		workers                                                                       int
		shardMB                                                                       float64
		printConfig                                                                   bool
	)
	cmd := &cobra.Command{
		Use:   "filter DIR... --out DIR",
		Short: "Drop low-quality documents with the published heuristics and the GPT-3 quality classifier",
		Long: `filter reads document shards (DIR... from ingest or another stage) and
writes the kept documents to --out and the dropped ones, with their reason
and the measured value that tripped the rule, to --out/dropped.

Rules (--rules, run in the order given; defaults are the published ones):
  url                domains/substrings from --url-blocklist
  language           --lang languages with confidence >= --lang-min
  gopher_repetition  Gopher duplicate lines/paragraphs/n-grams (Rae et al. 2021)
  gopher_quality     Gopher word counts, symbols, bullets, stop words
  c4                 C4 line removal and document drops (Raffel et al. 2020)
  fineweb_quality    FineWeb line punctuation, short lines, duplicates (Penedo et al. 2024)
  decontam           benchmark 13-gram overlap (GPT-3), index from 'smelt decontam index';
                     set decontam.index and decontam.policy (drop or gpt3) in --config
  pii                replace e-mail, IP, phone, card and IBAN with <EMAIL>, <IP>, ...
Every threshold can be changed in a YAML file given with --config
(--print-config shows the defaults).

--classifier MODEL (from 'smelt classifier train', or fasttext:PATH for any
fastText model, such as DCLM's bigram classifier, scored by the
probability of --classifier-label) scores every document,
kept and dropped, into its quality column; --keep then decides the
documents the rules kept: pareto:ALPHA keeps a document iff a Pareto(ALPHA)
draw seeded by its id exceeds 1 - score (GPT-3 used 9), threshold:X keeps
scores >= X. Output is the same for any --workers; a killed run resumes.`,
		Example: `  smelt filter shards/cc --out shards/cc-filtered
  smelt filter shards/cc --out shards/cc-q --rules gopher_quality --classifier q.model --keep pareto:9`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := filter.DefaultConfig()
			if configPath != "" {
				data, err := os.ReadFile(configPath)
				if err != nil {
					return fmt.Errorf("filter --config: %w", err)
				}
				if cfg, err = filter.ParseConfig(data); err != nil {
					return fmt.Errorf("%s: %w", configPath, err)
				}
			}
			if cmd.Flags().Changed("rules") {
				cfg.Rules = nil
				if rules != "" && rules != "none" {
					cfg.Rules = strings.Split(rules, ",")
				}
			}
			if cmd.Flags().Changed("lang") {
				cfg.Language.Languages = strings.Split(langs, ",")
				if !contains(cfg.Rules, filter.RuleLanguage) {
					cfg.Rules = append([]string{filter.RuleLanguage}, cfg.Rules...)
				}
			}
			if cmd.Flags().Changed("lang-min") {
				cfg.Language.MinScore = langMin
			}
			if blockList != "" {
				u, err := filter.LoadURLBlockList(blockList)
				if err != nil {
					return err
				}
				cfg.URL = u
				if !contains(cfg.Rules, filter.RuleURL) {
					cfg.Rules = append([]string{filter.RuleURL}, cfg.Rules...)
				}
			}
			if badWords != "" {
				words, err := filter.LoadWordList(badWords)
				if err != nil {
					return err
				}
				cfg.C4.BadWords = words
			}
			if printConfig {
				y, err := cfg.YAML()
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(y)
				return err
			}
			if len(args) == 0 {
				return fmt.Errorf("filter: give at least one input directory")
			}
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			args, remote, err := remoteIO(cmd.Context(), args, out) // s3:// inputs and --out
			if err != nil {
				return err
			}
			out = remote.Dir
			pipe, err := cfg.Pipeline()
			if err != nil {
				return err
			}
			stage := &filter.Stage{Pipeline: pipe, Annotate: cfg.Annotate}
			settings := map[string]any{"rules": cfg}
			if classifier != "" {
				m, scorer, sum, err := loadClassifier(classifier, ftLabel)
				if err != nil {
					return err
				}
				k, err := filter.ParseKeep(keep)
				if err != nil {
					return err
				}
				k.Seed = seed
				stage.Model, stage.Scorer, stage.Keep = m, scorer, k
				settings["model_sha256"], settings["keep"] = hex.EncodeToString(sum), k
				if scorer != nil {
					settings["fasttext_label"] = scorer.(*filter.FastTextClassifier).Label
				}
			} else if cmd.Flags().Changed("keep") {
				return fmt.Errorf("--keep needs --classifier")
			}
			var total int64
			for _, dir := range args {
				if m, err := shards.ReadManifest(dir); err == nil {
					total += m.Totals.DataBytes
				}
			}
			targetBytes, err := shards.ShardBytes(shardMB) // also checked for every verb in checkShardMB
			if err != nil {
				return fmt.Errorf("--shard-mb: %w", err)
			}
			p := newProgress(cmd.ErrOrStderr(), "filter", total)
			st, err := stage.Run(cmd.Context(), filter.RunOptions{
				Inputs: args, Out: out, Workers: workers, TargetBytes: targetBytes, Settings: settings,
				Progress: func(docs, bytes, _, _ int64) { p.update(bytes, docs, docs) },
			})
			p.finish(err)
			if err == nil {
				err = remote.Publish(cmd.Context())
			}
			if err != nil {
				return remote.Err(err)
			}
			return printSummary(cmd.OutOrStdout(), st)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "output directory for kept documents; dropped ones go to OUT/dropped (required)")
	f.StringVar(&rules, "rules", strings.Join(filter.DefaultRules, ","), "comma-separated rules to run, in order (none = only the classifier)")
	f.StringVar(&configPath, "config", "", "YAML file with rule thresholds (see --print-config)")
	f.BoolVar(&printConfig, "print-config", false, "print the resolved rule configuration as YAML and exit")
	f.StringVar(&langs, "lang", "en", "language rule: comma-separated languages to keep (adds the rule)")
	f.Float64Var(&langMin, "lang-min", 0.65, "language rule: least detector confidence")
	f.StringVar(&blockList, "url-blocklist", "", "file of blocked domains/URL substrings, one a line (adds the url rule)")
	f.StringVar(&badWords, "bad-words", "", "C4: file of bad words, one a line; a document holding one is dropped")
	f.StringVar(&classifier, "classifier", "", "quality model from 'smelt classifier train', or fasttext:PATH for a fastText model")
	f.StringVar(&ftLabel, "classifier-label", filter.DefaultFastTextLabel, "with --classifier fasttext:PATH: the label whose probability is the score")
	f.StringVar(&keep, "keep", "pareto:9", "classifier keep policy: pareto:ALPHA or threshold:X")
	f.Uint64Var(&seed, "seed", 0, "seed mixed into the per-document Pareto draw")
	f.IntVarP(&workers, "workers", "j", 0, "parallel workers (0 = all cores); output is the same for any value")
	f.Float64Var(&shardMB, "shard-mb", 64, shardMBUsage)
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
