// Package lineage answers "where did this document go" for a finished smelt
// run, and takes documents out of every output of the run ("takedown")
// without rebuilding it.
//
// # Index
//
// Index builds, once per run, a sorted, immutable file of zstd blocks under
// RUN_DIR/.smelt/lineage/ (index.slx; the build sorts on disk, so its
// memory does not grow with the run) with one small record per document and step it
// went through: the ingest task, shard and row with its input file and
// record key; every filter step's decision (kept, or the rule, reason and
// value that dropped it, with the rules it passed); the dedup decision with
// the cluster's survivor; the token shard and row with the token count and
// the token offset in the shard; and, for every export, the file, byte
// offset and length (and the Megatron document index, or the row of a
// Parquet or JSONL file). URLs and hosts are keyed too, so a query by id,
// URL or domain reads one or two blocks. The index records a stamp (the
// sha256 of every manifest, export.json and takedown.json of the run): a
// query on a run whose stamp changed rebuilds it first.
//
// # Takedown
//
// Takedown removes documents (by id, URL or domain, optionally with their
// dedup cluster) from every document shard, dropped side output, token
// shard and export of a run, writes the change to RUN_DIR/takedown.json and
// appends the ids and URLs to a takedown list in the dedup store (or the run
// directory), which the opt-out filter rule of a later run reads. Its
// steps are idempotent and driven by a journal in RUN_DIR/.smelt, so a
// takedown killed at any point and started again ends with the same bytes.
// Token shards are rewritten from their own tokens (nothing is encoded
// again) by replaying the tokenize stage with a tokenizer that returns the
// recorded tokens, so they are byte-identical to what tokenizing the reduced
// documents would give; docs/lineage.md explains why the shards after the
// first changed one are rewritten too.
package lineage
