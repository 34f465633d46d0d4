#!/bin/sh
# model_check.sh - the model test as `make check` runs it: 200,000 ops with
# the fixed seed 1 (the same run every time, for CI), then 30,000 ops with a
# seed from the clock (new coverage each run; the seed is printed first so a
# failure can be replayed: tests/model/model_test --seed N --ops 30000).
# TALUS_TEST_SCALE (a float, default 1; the sanitizer build uses 0.5) scales
# both op counts. MODEL_TEST_OPS and MODEL_TEST_SEED override the fixed run;
# MODEL_TEST_FLAGS is passed to both runs (e.g. --real-sync).
set -e
bin=./tests/model/model_test
ops() {
    awk -v n="$1" -v s="${TALUS_TEST_SCALE:-1}" \
        'BEGIN { v = int(n * s + 0.5); if (v < 1000) v = 1000; print v }'
}
# shellcheck disable=SC2086 # MODEL_TEST_FLAGS is a list of options
"$bin" --seed "${MODEL_TEST_SEED:-1}" --ops "${MODEL_TEST_OPS:-$(ops 200000)}" $MODEL_TEST_FLAGS
# The second run takes TALUS_TEST_SEED when set (make check sets it, so CI
# is repeatable), a clock seed otherwise.
# shellcheck disable=SC2086
"$bin" ${TALUS_TEST_SEED:+--seed "$TALUS_TEST_SEED"} --ops "$(ops 30000)" $MODEL_TEST_FLAGS
