package main

import (
	"strings"
	"testing"
)

// TestInterruptHints: the message printed on Ctrl-C says what resumes the
// verb that was interrupted: inspect has nothing to resume (it used to say
// "run the same command again to resume"), train needs --resume, the
// stages resume from their checkpoint; every verb named has a command.
func TestInterruptHints(t *testing.T) {
	root := newRootCmd()
	for path := range resumeHints {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil || c == root || c.CommandPath() != "smelt "+path {
			t.Errorf("resumeHints names %q, which is no verb", path)
		}
	}
	cases := map[string]string{
		"inspect demo-run":                   "nothing to resume",
		"train --data mix.yaml -o runs/x":    "smelt train --resume OUT",
		"ingest a.warc.gz -o out":            "run the same command again to resume from the last checkpoint",
		"run recipe.yaml --run-dir runs/x":   "finished tasks are kept",
		"tokenizer train corpus --vocab 300": "start over",
		"no-such-verb":                       defaultResumeHint,
	}
	for args, want := range cases {
		if got := interruptHint(root, strings.Fields(args)); !strings.Contains(got, want) {
			t.Errorf("smelt %s: hint %q, want %q", args, got, want)
		}
	}
}
