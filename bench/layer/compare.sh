#!/bin/sh
# Layer export and store hashing vs the command-line tools, on the same input.
#   bench/layer/compare.sh BUILD_DIR [TREE]     (TREE defaults to /usr/lib/python3.11)
# For each command: median of 5 runs of wall time and of CPU time (user+sys of the whole
# pipeline). On a shared, loaded machine compare CPU times; wall times are what you get.
set -eu
build=${1:?usage: compare.sh BUILD_DIR [TREE]}
tree=${2:-/usr/lib/python3.11}
runs=5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints "WALL CPU" medians of $runs runs of the shell command $1. Output goes through cat:
# GNU tar skips reading file data when its output is /dev/null.
measure() {
  for i in $(seq $runs); do
    /usr/bin/time -f "%e %U %S" -o "$tmp/t" sh -c "$1 | cat >/dev/null"
    cat "$tmp/t"
  done >"$tmp/runs"
  w=$(awk '{print $1}' "$tmp/runs" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  c=$(awk '{print $2+$3}' "$tmp/runs" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$w $c"
}
report() {  # name "WALL CPU" MB
  set -- "$1" $2 "$3"
  printf '%-34s wall %6.3fs  cpu %6.3fs  %7.0f MB/s per CPU-second\n' "$1" "$2" "$3" \
    "$(echo "$4 / $3" | bc -l)"
}

tar -C "$tree" -cf - . | cat >/dev/null  # warm the page cache
mb=$(echo "$(tar -C "$tree" -cf - . | wc -c) / 1000000" | bc -l)
echo "tree: $tree ($(printf '%.1f' "$mb") MB as tar), load: $(cut -d' ' -f1-3 /proc/loadavg)"
report "tar c" "$(measure "tar -C '$tree' -cf - .")" "$mb"
report "tar c | zstd -3" "$(measure "tar -C '$tree' -cf - . | zstd -3 -q -c")" "$mb"
report "tar c | gzip" "$(measure "tar -C '$tree' -cf - . | gzip -c")" "$mb"
echo "Cairn (one pass: tar + diff id + compress + digest; Time = wall, CPU = main thread):"
CAIRN_BENCH_TREE="$tree" "$build/bench/layer/layer_bench" --benchmark_filter=Export \
  --benchmark_repetitions=$runs --benchmark_report_aggregates_only=true 2>/dev/null |
  grep -E "median"

tar -C "$tree" -cf "$tmp/tree.tar" .
mkdir "$tmp/x"
report "tar x (into a fresh dir)" \
  "$(measure "rm -rf '$tmp/x' && mkdir '$tmp/x' && tar -C '$tmp/x' -xf '$tmp/tree.tar'")" "$mb"
rm -rf "$tmp/x" "$tmp/tree.tar"
echo "Cairn applyLayerTar (flatten, from memory):"
CAIRN_BENCH_TREE="$tree" "$build/bench/layer/layer_bench" --benchmark_filter=ApplyTar \
  --benchmark_repetitions=$runs --benchmark_report_aggregates_only=true 2>/dev/null |
  grep -E "median"

head -c $((256 * 1024 * 1024)) /dev/urandom >"$tmp/blob"
report "openssl dgst -sha256 (256 MiB)" "$(measure "openssl dgst -sha256 '$tmp/blob'")" 268.435456
echo "Cairn store blob re-hash (openRead + Sha256, 256 MiB):"
"$build/bench/layer/layer_bench" --benchmark_filter=StoreSha256 --benchmark_repetitions=$runs \
  --benchmark_report_aggregates_only=true 2>/dev/null | grep -E "median"
