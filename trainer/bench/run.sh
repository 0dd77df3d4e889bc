#!/bin/sh
# Side-by-side trainer benchmark: smelt (OpenBLAS build, then pure Go) and
# PyTorch on the same model and batch (4 layers, 4 heads, width 256,
# context 256, vocabulary 8192, batch 8), in one run on this machine.
#
# Needs: apt-get install -y libopenblas-dev python3-torch
# Usage: trainer/bench/run.sh [STEPS]   (from anywhere; STEPS per measurement, default 5)
set -eu
cd "$(dirname "$0")/.."
steps=${1:-5}
py=/usr/bin/python3
[ -x "$py" ] || py=python3

echo "== smelt, OpenBLAS kernel (go test -tags openblas -bench TrainStep)"
go test -tags openblas -run '^$' -bench 'TrainStep' -benchtime "${steps}x" . | tee /tmp/smelt_bench.$$ | grep -E '^Benchmark|peak'
echo "== PyTorch $("$py" -c 'import torch; print(torch.__version__)'), best of 1 and 2 threads"
"$py" bench/torch_bench.py --steps "$steps" | tee /tmp/torch_bench.$$
smelt=$(awk '/kernel=default/ { for (i = 1; i < NF; i++) if ($(i+1) == "tokens/s") print $i }' /tmp/smelt_bench.$$)
mfu=$(awk '/kernel=default/ { for (i = 1; i < NF; i++) if ($(i+1) == "%MFU") print $i }' /tmp/smelt_bench.$$)
torch=$(sed -n 's/^best_tokens_per_s=\([0-9.]*\).*/\1/p' /tmp/torch_bench.$$)
rm -f /tmp/smelt_bench.$$ /tmp/torch_bench.$$
echo "== result"
awk -v s="$smelt" -v t="$torch" -v m="$mfu" 'BEGIN { printf "smelt %.0f tokens/s (MFU %.1f%% of the measured OpenBLAS sgemm peak), PyTorch best %.0f tokens/s, ratio smelt/torch %.2fx\n", s, m, t, s / t }'
