package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// resumeHints says, per verb (its command path without "smelt "), what
// resumes it after Ctrl-C or SIGTERM. Each says what actually happens: the
// stages resume from their last checkpoint when run again with the same
// arguments; train continues only with --resume; the read-only verbs have
// nothing to resume; the one-shot trainers start over.
var resumeHints = map[string]string{
	"ingest":                "run the same command again to resume from the last checkpoint",
	"filter":                "run the same command again to resume from the last checkpoint",
	"dedup":                 "run the same command again to resume from the last finished step",
	"tokenize":              "run the same command again to resume from the last checkpoint",
	"export":                "run the same command again to resume from the last checkpoint",
	"run":                   "run the same command again: finished tasks are kept and the others resume",
	"demo":                  "run smelt demo again to resume: finished steps are kept",
	"train":                 "continue with smelt train --resume OUT (the checkpoint is written on interrupt); the same command without --resume is refused",
	"inspect":               "it only served pages: nothing to resume",
	"report":                "the report is written only when complete: run it again",
	"stats":                 "nothing to resume",
	"status":                "nothing to resume",
	"explain":               "nothing to resume",
	"generate":              "nothing to resume: run it again (same seed, same text)",
	"mix plan":              "nothing to resume",
	"tokenizer train":       "tokenizer training keeps no checkpoint: run it again to start over",
	"classifier train":      "classifier training keeps no checkpoint: run it again to start over",
	"fasttext train":        "fastText training keeps no checkpoint: run it again to start over",
	"decontam index":        "the index is written only when complete: run it again to start over",
	"dedup synth":           "run the same command again to write the corpus again",
	"fasttext predict":      "nothing to resume",
	"tokenizer encode":      "nothing to resume",
	"tokenizer decode":      "nothing to resume",
	"tokenizer info":        "nothing to resume",
	"decontam info":         "nothing to resume",
	"fasttext predict-prob": "nothing to resume",
}

// defaultResumeHint is for verbs without an entry (added later): every
// stage that writes shards resumes from its checkpoint.
const defaultResumeHint = "run the same command again to resume from the last checkpoint"

// interruptHint is what resumes the verb that args run.
func interruptHint(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil || c == root {
		return defaultResumeHint
	}
	path := strings.TrimPrefix(c.CommandPath(), root.Name()+" ")
	if h, ok := resumeHints[path]; ok {
		return h
	}
	return defaultResumeHint
}
