//go:build openblas

package trainer

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// HasOpenBLAS reports whether this binary was built with the openblas tag.
const HasOpenBLAS = true

// blasKernel runs the products through OpenBLAS's cblas_sgemm (Debian's
// libopenblas-dev), whose DYNAMIC_ARCH build picks kernels for the CPU
// (OPENBLAS_CORETYPE overrides it; the name reports the choice). OpenBLAS
// itself runs single-threaded; a large product is
// split by rows of C over the backend's goroutines instead. With OpenBLAS's
// own pthreads the threads kept spinning between products and fought the Go
// goroutines of the elementwise ops for the two cores: on the issue's
// benchmark config an even split in two ran at 1149 tokens/s against 823
// with OpenBLAS threading (best of 6 alternating trials on a machine loaded
// by other builds).
type blasKernel struct {
	workers int
}

func defaultKernel(workers int) gemmKernel {
	C.openblas_set_num_threads(1)
	return blasKernel{workers: workers}
}

func (k blasKernel) name() string {
	return fmt.Sprintf("OpenBLAS cblas_sgemm (%s, %s kernels), %d goroutines", C.GoString(C.openblas_get_config()), C.GoString(C.openblas_get_corename()), k.workers)
}

// splitChunks is how many row chunks of C a product of m rows is cut into
// for the goroutines: up to maxChunks, at least minChunkRows rows each. It
// depends on m only, never on the worker count, so the same cblas_sgemm
// calls run whatever the number of workers (OpenBLAS picks its kernels by
// shape, and they round differently) and results do not depend on it. Few,
// tall chunks keep the cost of OpenBLAS re-packing B for every call small:
// 128-row chunks ran a 1024^3 product at 71 GFLOP/s, 4 chunks at 108 to
// 155 (a few runs each on this shared, noisy machine).
func splitChunks(m int) int { return max(1, min(maxChunks, m/minChunkRows)) }

const (
	maxChunks    = 4
	minChunkRows = 128
)

func (k blasKernel) sgemm(transA, transB bool, m, n, kk int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	chunks := splitChunks(m)
	if chunks <= 1 {
		cblasSgemm(transA, transB, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	rows := (m + chunks - 1) / chunks
	parallelFor(k.workers, chunks, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			r0, r1 := ch*rows, min((ch+1)*rows, m)
			aoff := r0 * lda
			if transA {
				aoff = r0
			}
			cblasSgemm(transA, transB, r1-r0, n, kk, alpha, a[aoff:], lda, b, ldb, beta, c[r0*ldc:], ldc)
		}
	})
}

func cblasSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	ta, tb := uint32(C.CblasNoTrans), uint32(C.CblasNoTrans)
	if transA {
		ta = C.CblasTrans
	}
	if transB {
		tb = C.CblasTrans
	}
	C.cblas_sgemm(C.CblasRowMajor, ta, tb, C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(unsafe.Pointer(&a[0])), C.int(lda), (*C.float)(unsafe.Pointer(&b[0])), C.int(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}

// setBLASThreads sets OpenBLAS's own thread count (benchmarks compare its
// threading with the row split).
func setBLASThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// checkGemm panics with a clear message when a view is too short for the
// product: the cgo kernel would otherwise read or write out of bounds.
func checkGemm(transA, transB bool, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	if m <= 0 || n <= 0 || k <= 0 || lda < ac || ldb < bc || ldc < n ||
		la < lda*(ar-1)+ac || lb < ldb*(br-1)+bc || lc < ldc*(m-1)+n {
		panic(fmt.Sprintf("trainer: sgemm %dx%dx%d (trans %v %v) views too short: a %d/%d b %d/%d c %d/%d",
			m, n, k, transA, transB, la, lda, lb, ldb, lc, ldc))
	}
}
