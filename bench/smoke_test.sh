#!/bin/sh
# smoke_test.sh - runs talus-bench briefly on every engine built in: every
# workload must complete, and all engines must agree on what each read
# workload found (talus-bench exits 1 otherwise), so Talus is checked
# against RocksDB, LevelDB and LMDB on the same operations. Fixed seed.
set -u
bin=${TALUS_BENCH:-./bench/talus-bench}
dir=$(mktemp -d "${TMPDIR:-/tmp}/talus-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM
echo "talus-bench smoke test in $dir (seed 7, small memtables so tables and compactions are used)"
if "$bin" --num=20000 --seed=7 --threads=2 --histogram --write_buffer_size=256K --block_size=1K --cache_size=1M --db="$dir/db" --json="$dir/out.json" \
    --benchmarks=fillseq,readseq,fillrandom,overwrite,readrandom,readmissing,readseq,readreverse,seekrandom,deleterandom,readrandom,readseq,readwhilewriting \
    >"$dir/out.txt" 2>"$dir/err.txt"; then
    rc=0
else
    rc=1
fi
cat "$dir/out.txt"
grep -q '"results"' "$dir/out.json" 2>/dev/null || { echo "no JSON written"; rc=1; }
if [ $rc -ne 0 ]; then
    cat "$dir/err.txt"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "1 passed, 0 failed"
