#!/bin/sh
# Side-by-side trainer benchmark: smelt (OpenBLAS build) and PyTorch on the
# same model and batch (4 layers, 4 heads, width 256, context 256,
# vocabulary 8192, batch 8 sequences, AdamW, clipping), in one run on this
# machine. Each side reports the best of REPEATS timings of STEPS steps at
# 1 and at 2 threads, so that load from other processes hurts both sides
# alike (a busy neighbour on one core halves a 2-thread run, not a 1-thread
# one). PUREGO=1 also times the pure-Go kernels (slow).
#
# Needs: apt-get install -y libopenblas-dev python3-torch
# Usage: trainer/bench/run.sh [STEPS [REPEATS]]   (defaults 4 and 3)
set -eu
cd "$(dirname "$0")/.."
steps=${1:-4}
reps=${2:-3}
py=/usr/bin/python3
[ -x "$py" ] || py=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== load: $(cat /proc/loadavg)"
echo "== smelt, OpenBLAS kernel: go test -tags openblas -bench TrainStep/kernel=default -cpu 1,2 -count $reps"
go test -tags openblas -run '^$' -bench 'TrainStep/kernel=default' -benchtime "${steps}x" -cpu 1,2 -count "$reps" . | tee "$tmp/smelt" | grep '^Benchmark'
echo "== PyTorch $("$py" -c 'import torch; print(torch.__version__)')"
"$py" bench/torch_bench.py --steps "$steps" --repeats "$reps" | tee "$tmp/torch"
if [ "${PUREGO:-0}" = 1 ]; then
	echo "== smelt, pure-Go kernels (gonum; and archsimd with GOEXPERIMENT=simd)"
	go test -run '^$' -bench 'TrainStep/kernel=default' -benchtime 2x . | grep '^Benchmark' | sed 's/default/gonum/'
	GOEXPERIMENT=simd go test -run '^$' -bench 'TrainStep/kernel=default' -benchtime 2x . | grep '^Benchmark' | sed 's/default/archsimd/'
fi
# The metrics of the fastest of the smelt runs.
metric() {
	awk -v m="$1" '/kernel=default/ {
		for (i = 1; i < NF; i++) { if ($(i+1) == "tokens/s") t = $i; if ($(i+1) == m) v = $i }
		if (t > best) { best = t; out = v }
	} END { print out }' "$tmp/smelt"
}
smelt=$(metric tokens/s)
fpt=$(metric MFLOP/token)
# MFU against the best sgemm peak seen in any run: one timing under load
# understates the peak and so overstates MFU.
peak=$(awk '/kernel=default/ { for (i = 1; i < NF; i++) if ($(i+1) == "peak-GFLOP/s" && $i > p) p = $i } END { print p }' "$tmp/smelt")
mfu=$(awk -v s="$smelt" -v f="$fpt" -v p="$peak" 'BEGIN { print 100 * s * f / 1000 / p }')
torch=$(sed -n 's/^best_tokens_per_s=\([0-9.]*\).*/\1/p' "$tmp/torch")
echo "== load: $(cat /proc/loadavg)"
awk -v s="$smelt" -v t="$torch" -v m="$mfu" -v p="$peak" 'BEGIN { printf "result: smelt best %.0f tokens/s, MFU %.1f%% of the best measured OpenBLAS sgemm peak (%.0f GFLOP/s, 1024^3); PyTorch best %.0f tokens/s; smelt/PyTorch %.2fx\n", s, m, p, t, s / t }'
