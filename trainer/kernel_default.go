//go:build !openblas

package trainer

func defaultKernel(workers int) gemmKernel { return fastGoKernel(workers) }

// HasOpenBLAS reports whether this binary was built with the openblas tag.
const HasOpenBLAS = false
