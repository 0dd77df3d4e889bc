// Package filter implements smelt's quality-filtering stage: the published
// heuristic rules (Gopher quality and repetition, C4, FineWeb, language and
// URL block lists) and the GPT-3 style quality classifier (hashed word
// unigrams and bigrams, L2-regularised logistic regression, Pareto or
// threshold keep).
//
// The shape follows datatrove's base_filter: a Rule implements only its
// check and returns a typed reason ("gopher/too_few_words") and the measured
// value that tripped it; one wrapper, Pipeline, does the routing and the
// accounting. Rules that rewrite text (C4 line removal) implement Modifier
// and report how many bytes they removed. Every rule guards empty and
// degenerate documents itself and never relies on another rule running first.
//
// Stage.Run wires a Pipeline and an optional Model into shards.RunDocStage,
// so the stage is resumable and deterministic whatever the worker count.
package filter
