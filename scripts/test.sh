#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run `make check`, then
# build again with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# suite again. Prints a closing "N passed, N failed" line.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh || exit 1

passed=0
failed=0
run_suite() { # $1 = build dir, rest = configure args
    local dir=$1
    shift
    rm -rf "$dir"
    BUILD_DIR=$dir bash scripts/build.sh "$@" || return 1
    (cd "$dir" && make -j"$(nproc)" check >"$dir/check.out" 2>&1)
    local rc=$?
    grep -E '^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR):' "$dir/check.out"
    local p f
    p=$(grep -cE '^(PASS|XFAIL):' "$dir/check.out")
    f=$(grep -cE '^(FAIL|XPASS|ERROR):' "$dir/check.out")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ $rc -ne 0 ]; then
        echo "---- failures in $dir ----"
        for log in $(grep -lE '^:test-result: (FAIL|ERROR)' $(find "$dir" -name '*.trs') 2>/dev/null); do
            echo "== ${log%.trs}.log"
            tail -n 60 "${log%.trs}.log"
        done
        [ "$f" -eq 0 ] && failed=$((failed + 1))
    fi
    return $rc
}

status=0
echo "== normal build"
run_suite "$top/build-check" || status=1
echo "== sanitizer build (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    TALUS_TEST_SCALE=${TALUS_TEST_SCALE_ASAN:-0.5} \
    run_suite "$top/build-asan" --enable-sanitizers || status=1
echo "$passed passed, $failed failed"
exit $status
