//go:build openblas

package trainer

/*
#cgo CFLAGS: -I/usr/include/x86_64-linux-gnu
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// HasOpenBLAS reports whether this binary was built with the openblas tag.
const HasOpenBLAS = true

// blasKernel runs the products through OpenBLAS's cblas_sgemm (Debian's
// libopenblas-dev). Large products use OpenBLAS's own threads (as many as
// the backend's workers); inside serially the library is set to one thread
// so that the attention's many small products run one per goroutine.
type blasKernel struct {
	threads int
}

var blasMu sync.Mutex

func defaultKernel(workers int) gemmKernel {
	blasMu.Lock()
	C.openblas_set_num_threads(C.int(workers))
	blasMu.Unlock()
	return blasKernel{threads: workers}
}

func (k blasKernel) name() string {
	return fmt.Sprintf("OpenBLAS cblas_sgemm (%s, %d threads)", C.GoString(C.openblas_get_config()), k.threads)
}

func (blasKernel) sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
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

func (k blasKernel) serially(f func()) {
	blasMu.Lock()
	defer blasMu.Unlock()
	C.openblas_set_num_threads(1)
	defer C.openblas_set_num_threads(C.int(k.threads))
	f()
}
