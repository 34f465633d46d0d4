#!/bin/sh
# model_check.sh - the model test as `make check` runs it: 200,000 ops with
# the fixed seed 1 (the same run every time, for CI), then 20,000 ops with a
# seed from the clock (new coverage each run; the seed is printed first so a
# failure can be replayed: tests/model/model_test --seed N --ops 20000).
# MODEL_TEST_OPS and MODEL_TEST_SEED override the fixed run.
set -e
bin=./tests/model/model_test
"$bin" --seed "${MODEL_TEST_SEED:-1}" --ops "${MODEL_TEST_OPS:-200000}"
"$bin" --ops 20000
