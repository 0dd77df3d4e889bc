#!/bin/sh
# measure_takedown.sh DIR [DOCS [URLS]] measures smelt takedown against
# rerunning the tokenize and export steps, with the commands a user runs:
# wall time, CPU time and peak RSS from /usr/bin/time, start-up included.
#
# It builds (once, in DIR) a run of DOCS generated documents (default
# 1,000,000) with GPT-2's tokenizer and all six exports, picks URLS kept
# documents at random (default DOCS/100) into DIR/urls.txt, then times:
# the first `smelt lineage` query (it builds the index), a second one, a
# takedown of the URLs on a copy of the run, a copy of the files that
# takedown changed (the floor under any rewrite of them), and `smelt run`
# after the tokenize and export outputs are removed. DIR needs about 10 GB per
# million documents.
set -eu
dir=$(mkdir -p "$1" && cd "$1" && pwd)
docs=${2:-1000000}
urls=${3:-$((docs / 100))}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
go build -o "$dir/smelt" ./cmd/smelt
if [ ! -f "$dir/run/export-megatron/export.json" ] || [ ! -f "$dir/urls.txt" ]; then
	SMELT_LINEAGE_BENCH_DOCS=$docs SMELT_LINEAGE_BENCH_URLS=$urls SMELT_LINEAGE_BENCH_DIR=$dir \
		SMELT_LINEAGE_BENCH_BUILD_ONLY=1 go test -count=1 -run TestMeasureTakedown -v -timeout 3h ./lineage/
fi
t() {
	/usr/bin/time -f "  %e s wall, %U s user + %S s system CPU, %M KB peak RSS" "$@"
}
u=$(head -n 1 "$dir/urls.txt")
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== smelt lineage, first query (builds the index)"
rm -rf "$dir/run/.smelt/lineage"
t "$dir/smelt" lineage "$dir/run" --url "$u" >/dev/null
echo "== smelt lineage, second query"
t "$dir/smelt" lineage "$dir/run" --url "$u" >/dev/null
# The takedown runs on a copy of the run and adds to the dedup store
# (a segment, the takedown list): the store is put back after it, or the
# rerun below would see its dedup step's inputs changed.
rm -rf "$dir/td" "$dir/store.bak"
cp -a "$dir/run" "$dir/td"
cp -a "$dir/store" "$dir/store.bak"
echo "== smelt takedown of $(wc -l <"$dir/urls.txt") URLs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
t "$dir/smelt" takedown "$dir/td" --urls "$dir/urls.txt" >/dev/null
cp "$dir/td/takedown.json" "$dir/takedown.json"
rm -rf "$dir/td" "$dir/store"
mv "$dir/store.bak" "$dir/store"
# The floor under any takedown that rewrites those files: the same files
# (from takedown.json) read, hashed, written, hashed and synced, nothing
# decoded or compressed.
go test -c -o "$dir/lineage.test" ./lineage/
echo "== copying the files the takedown changed, the least a rewrite costs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
SMELT_LINEAGE_FLOOR_RUN="$dir/run" SMELT_LINEAGE_FLOOR_RECORD="$dir/takedown.json" \
	t "$dir/lineage.test" -test.run '^TestMeasureRewriteFloor$' -test.v | grep rewrote
echo "== smelt run, after removing the tokenize and export outputs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
(cd "$dir/run" && rm -rf tokenize export-* mix.yaml .smelt/tasks/tokenize .smelt/tasks/export-*)
t "$dir/smelt" run "$dir/recipe.yaml" --run-dir "$dir/run" >/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
