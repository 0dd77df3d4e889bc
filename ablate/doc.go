// Package ablate measures what the data does to a model: it trains small
// models of one fixed shape, tokenizer, token budget and seeds on several
// variants ("arms") of the training data, scores every model on the same
// held-out evaluation sets, and tabulates mean loss and bits per byte with
// the spread over seeds (the loop FineWeb and DCLM chose their recipes
// with). Every eval set's text is removed from every arm's training data
// (13-gram decontamination, filter.Decontam) before tokenizing, and Split
// holds documents out by a hash of their id.
//
// Mixture search (RegMix, Liu et al. 2024) builds on the same machinery:
// it trains K proxy models on seeded Dirichlet draws of source weights,
// fits a ridge regression from weights to held-out loss, and proposes the
// weights that regression predicts best (see mixsearch.go).
//
// Output layout under Config.Out: evals.idx (the eval sets' n-gram index),
// data/SOURCE/{docs,tokens} per prepared source, runs/ARM/seed-S per
// model (checkpoint.bin, log.csv, loss.png, result.json), and
// ablation.json with ablation.txt, the table.
package ablate
