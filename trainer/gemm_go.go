package trainer

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// goKernel is the pure-Go matrix product: gonum's Sgemm, which packs and
// blocks the matrices, uses assembly SAXPY/SDOT inner loops on amd64 and
// spreads large products over goroutines. A plain blocked Go loop measured
// about 15 GFLOP/s on this 2-core machine against gonum's 32, so the
// fallback uses gonum rather than a hand-written loop.
type goKernel struct{}

func (goKernel) name() string { return "pure-Go (gonum sgemm)" }

func (goKernel) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	ar, ac := m, k
	if transA {
		ta = blas.Trans
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		tb = blas.Trans
		br, bc = n, k
	}
	// gonum checks len(a) >= lda*(rows-1)+cols exactly; trim the views,
	// which may run on to the end of a larger buffer.
	a = a[:lda*(ar-1)+ac]
	b = b[:ldb*(br-1)+bc]
	c = c[:ldc*(m-1)+n]
	gonum.Implementation{}.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
