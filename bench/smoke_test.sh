#!/bin/sh
# smoke_test.sh - runs talus-bench briefly on every engine built in: every
# workload must complete, and all engines must agree on what each read
# workload found (talus-bench exits 1 otherwise), so Talus is checked
# against RocksDB, LevelDB and LMDB on the same operations. Fixed seed.
#
# Three runs: every workload with the default durability (buffered: logs
# on) and two writer/reader threads; durability sync with two writer
# threads (concurrent synced commits: the group-commit path); and batches
# of 10 at one and two threads (--compare_threads). The databases go to
# /dev/shm when it is there: this test checks behaviour, not speed, and on
# a busy disk the syncs (2,000 synced writes per engine, and the fsyncs of
# every flush, open and close) would take most of its time.
set -u
bin=${TALUS_BENCH:-./bench/talus-bench}
base=${TMPDIR:-/tmp}
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    base=/dev/shm
fi
dir=$(mktemp -d "$base/talus-bench-smoke.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT INT TERM
small="--write_buffer_size=256K --block_size=1K --cache_size=1M"
failed=0

# run NAME JSON-FIELD-THAT-MUST-APPEAR ARGS...: one talus-bench run; prints
# its report, and its stderr when it fails.
run() {
    name=$1
    want=$2
    shift 2
    echo "== $name: talus-bench $*"
    if "$@" --json="$dir/$name.json" >"$dir/$name.txt" 2>"$dir/$name.err"; then
        rc=0
    else
        rc=1
    fi
    cat "$dir/$name.txt"
    if ! grep -q '"results"' "$dir/$name.json" 2>/dev/null; then
        echo "$name: no JSON written"
        rc=1
    elif ! grep -q "$want" "$dir/$name.json"; then
        echo "$name: JSON lacks $want"
        rc=1
    fi
    if [ $rc -ne 0 ]; then
        cat "$dir/$name.err"
        echo "FAIL: $name"
        failed=$((failed + 1))
    fi
}

echo "talus-bench smoke test in $dir (seed 7, small memtables so tables and compactions are used)"
run all '"durability": "buffered", "batch_size": 1, "threads": 2' \
    "$bin" --num=20000 --seed=7 --threads=2 --histogram $small --db="$dir/db" \
    --benchmarks=fillseq,readseq,fillrandom,overwrite,readrandom,readmissing,readseq,readreverse,seekrandom,deleterandom,readrandom,readseq,readwhilewriting
run sync '"durability": "sync", "batch_size": 1, "threads": 2' \
    "$bin" --durability=sync --num=2000 --seed=7 --threads=2 $small --db="$dir/db" \
    --benchmarks=fillrandom,overwrite,readrandom,deleterandom,readseq,readwhilewriting
run batch '"thread_scaling"' \
    "$bin" --batch_size=10 --compare_threads=1,2 --num=10000 --seed=7 --histogram $small \
    --db="$dir/db" \
    --benchmarks=fillseq,readseq,fillrandom,overwrite,readrandom,deleterandom,readseq,readwhilewriting
if [ $failed -ne 0 ]; then
    echo "$((3 - failed)) passed, $failed failed"
    exit 1
fi
echo "3 passed, 0 failed"
