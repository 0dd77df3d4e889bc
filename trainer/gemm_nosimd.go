//go:build !(goexperiment.simd && amd64)

package trainer

// fastGoKernel is the best pure-Go kernel of this build: gonum's, unless
// built with GOEXPERIMENT=simd on amd64 (gemm_simd.go).
func fastGoKernel(workers int) gemmKernel { return goKernel{} }
