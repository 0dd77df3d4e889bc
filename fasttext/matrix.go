package fasttext

import "fmt"

// matrix is a model's input or output matrix, dense or product-quantized.
type matrix interface {
	rows() int64
	cols() int64
	// addRow adds row i to x (len(x) == cols).
	addRow(x []float32, i int32)
	// dotRow returns the dot product of row i with x, accumulated in
	// float32 in column order as fastText does.
	dotRow(x []float32, i int32) float32
}

type denseMatrix struct {
	m, n int64
	data []float32
}

func (d *denseMatrix) rows() int64 { return d.m }
func (d *denseMatrix) cols() int64 { return d.n }

func (d *denseMatrix) row(i int32) []float32 {
	return d.data[int64(i)*d.n : (int64(i)+1)*d.n : (int64(i)+1)*d.n]
}

func (d *denseMatrix) addRow(x []float32, i int32) {
	r := d.row(i)
	x = x[:len(r)]
	for j, v := range r {
		x[j] += v
	}
}

func (d *denseMatrix) dotRow(x []float32, i int32) float32 {
	r := d.row(i)
	x = x[:len(r)]
	var s float32
	for j, v := range r {
		s += v * x[j]
	}
	return s
}

// productQuantizer holds the centroids of a product quantizer: the vector
// is cut into nsubq sub-vectors of dsub values (the last one lastdsub),
// each coded by one byte naming one of 256 centroids.
type productQuantizer struct {
	dim, nsubq, dsub, lastdsub int32
	centroids                  []float32
}

const ksub = 256

func readPQ(r *reader, what string) (*productQuantizer, error) {
	pq := &productQuantizer{dim: r.i32(what), nsubq: r.i32(what), dsub: r.i32(what), lastdsub: r.i32(what)}
	if r.err != nil {
		return nil, r.err
	}
	if pq.dim <= 0 || pq.dim > 1<<16 || pq.nsubq <= 0 || pq.dsub <= 0 || pq.lastdsub <= 0 ||
		int64(pq.dsub)*int64(pq.nsubq-1)+int64(pq.lastdsub) != int64(pq.dim) {
		return nil, fmt.Errorf("%s: inconsistent product quantizer (dim %d, nsubq %d, dsub %d, lastdsub %d) before byte offset %d",
			what, pq.dim, pq.nsubq, pq.dsub, pq.lastdsub, r.off)
	}
	pq.centroids = r.floats(int64(pq.dim)*ksub, what)
	return pq, r.err
}

func (pq *productQuantizer) write(w *writer) {
	for _, v := range []int32{pq.dim, pq.nsubq, pq.dsub, pq.lastdsub} {
		w.i32(v)
	}
	w.floats(pq.centroids)
}

// centroid returns centroid c of sub-quantizer s.
func (pq *productQuantizer) centroid(s int32, c byte) []float32 {
	if s == pq.nsubq-1 {
		off := s*ksub*pq.dsub + int32(c)*pq.lastdsub
		return pq.centroids[off : off+pq.lastdsub]
	}
	off := (s*ksub + int32(c)) * pq.dsub
	return pq.centroids[off : off+pq.dsub]
}

// quantMatrix is a product-quantized matrix (fastText's "quantize"):
// each row is nsubq codes, optionally with its norm coded separately by a
// one-dimensional quantizer.
type quantMatrix struct {
	qnorm     bool
	m, n      int64
	codes     []byte
	pq        *productQuantizer
	normCodes []byte
	npq       *productQuantizer
}

func readQuantMatrix(r *reader, what string) (*quantMatrix, error) {
	q := &quantMatrix{qnorm: r.boolean(what), m: r.i64(what), n: r.i64(what)}
	codesize := r.i32(what)
	if r.err != nil {
		return nil, r.err
	}
	if q.m < 0 || q.n <= 0 || q.n > 1<<16 || q.m > maxMatrixFloats || codesize < 0 {
		return nil, fmt.Errorf("%s: implausible quantized size %dx%d (%d codes) before byte offset %d", what, q.m, q.n, codesize, r.off)
	}
	q.codes = r.raw(int64(codesize), what)
	var err error
	if q.pq, err = readPQ(r, what); err != nil {
		return nil, err
	}
	if int64(q.pq.dim) != q.n || int64(codesize) != q.m*int64(q.pq.nsubq) {
		return nil, fmt.Errorf("%s: %d codes for %d rows of %d sub-quantizers (dim %d, matrix %d columns)",
			what, codesize, q.m, q.pq.nsubq, q.pq.dim, q.n)
	}
	if q.qnorm {
		q.normCodes = r.raw(q.m, what)
		if q.npq, err = readPQ(r, what); err != nil {
			return nil, err
		}
		if q.npq.dim != 1 {
			return nil, fmt.Errorf("%s: norm quantizer of dimension %d, want 1", what, q.npq.dim)
		}
	}
	return q, r.err
}

func (q *quantMatrix) write(w *writer) {
	w.boolean(q.qnorm)
	w.i64(q.m)
	w.i64(q.n)
	w.i32(int32(len(q.codes)))
	w.put(q.codes)
	q.pq.write(w)
	if q.qnorm {
		w.put(q.normCodes)
		q.npq.write(w)
	}
}

func (q *quantMatrix) rows() int64 { return q.m }
func (q *quantMatrix) cols() int64 { return q.n }

func (q *quantMatrix) norm(i int32) float32 {
	if !q.qnorm {
		return 1
	}
	return q.npq.centroid(0, q.normCodes[i])[0]
}

func (q *quantMatrix) addRow(x []float32, i int32) {
	alpha := q.norm(i)
	pq := q.pq
	code := q.codes[int64(i)*int64(pq.nsubq) : (int64(i)+1)*int64(pq.nsubq)]
	if pq.dsub == 2 && pq.lastdsub == 2 {
		// The common layout (fastText's default dsub of 2, as in
		// lid.176.ftz), unrolled: the generic loop below made addRow 40 %
		// of lid.176's prediction time.
		c := pq.centroids
		x = x[:2*len(code)]
		for s, k := range code {
			off := (s*ksub + int(k)) * 2
			x[2*s] += alpha * c[off]
			x[2*s+1] += alpha * c[off+1]
		}
		return
	}
	for s, k := range code {
		c := pq.centroid(int32(s), k)
		xs := x[int32(s)*pq.dsub:]
		for j, v := range c {
			xs[j] += alpha * v
		}
	}
}

func (q *quantMatrix) dotRow(x []float32, i int32) float32 {
	pq := q.pq
	code := q.codes[int64(i)*int64(pq.nsubq) : (int64(i)+1)*int64(pq.nsubq)]
	var s float32
	for sq, k := range code {
		c := pq.centroid(int32(sq), k)
		xs := x[int32(sq)*pq.dsub:]
		for j, v := range c {
			s += xs[j] * v
		}
	}
	return s * q.norm(i)
}
