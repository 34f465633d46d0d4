#!/bin/sh
# cli_test.sh - end-to-end test of the `talus` admin CLI: put/get/del/scan
# round trips (prefix, reverse, keys-only, escaping, hex), binary values from
# stdin, exit codes (get of an absent key = 1, missing database = 2, usage
# errors = 2), options before and after the arguments, and stats output.
# Run from the build directory (as `make check` does) or with TALUS=path.

# `A && ok || bad` is safe here: ok never fails.
# shellcheck disable=SC2015

TALUS=${TALUS:-./mount/talus}
if [ ! -x "$TALUS" ]; then
    echo "cli_test: $TALUS not built" >&2
    exit 99
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/talus-cli-XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
db=$work/db
pass=0
fail=0

ok() {
    pass=$((pass + 1))
}
bad() {
    fail=$((fail + 1))
    echo "cli_test: FAIL: $*" >&2
}

# expect_rc WANT DESCRIPTION -- COMMAND...: run, check exit status; output
# goes to $work/out and $work/err.
expect_rc() {
    want=$1
    what=$2
    shift 3
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok
    else
        bad "$what: exit $rc, expected $want (stderr: $(head -c 300 "$work/err"))"
    fi
}

# expect_out WANT_TEXT DESCRIPTION: compare $work/out with the text.
expect_out() {
    printf '%s' "$1" >"$work/want"
    if cmp -s "$work/want" "$work/out"; then
        ok
    else
        bad "$2: got [$(od -c "$work/out" | head -5)] expected [$1]"
    fi
}

# --- help, version, usage errors ---
expect_rc 0 "--help" -- "$TALUS" --help
grep -q 'scan DB \[PREFIX\]' "$work/out" && ok || bad "--help lacks the scan usage"
grep -q '\\xNN' "$work/out" && ok || bad "--help does not document the escaping"
expect_rc 0 "--version" -- "$TALUS" --version
grep -q '^talus [0-9]' "$work/out" && ok || bad "--version output: $(cat "$work/out")"
expect_rc 2 "no command" -- "$TALUS"
expect_rc 2 "unknown command" -- "$TALUS" frobnicate "$db"
grep -q "talus: unknown command 'frobnicate'" "$work/err" && ok || bad "unknown command message"
expect_rc 2 "unknown option" -- "$TALUS" --bogus get "$db" k
expect_rc 2 "too few args" -- "$TALUS" put "$db" k
expect_rc 2 "too many args" -- "$TALUS" get "$db" k extra

# --- missing database: every command but put refuses, and creates nothing ---
for cmd in "get $db k" "del $db k" "scan $db" "stats $db"; do
    # shellcheck disable=SC2086
    expect_rc 2 "missing db: $cmd" -- "$TALUS" $cmd
    grep -q "^talus: no database at $db\$" "$work/err" && ok ||
        bad "missing db: $cmd: stderr: $(cat "$work/err")"
done
[ ! -e "$db" ] && ok || bad "a read command created $db"

# --- put / get round trips ---
expect_rc 0 "put creates" -- "$TALUS" put "$db" alpha one
expect_rc 0 "get" -- "$TALUS" get "$db" alpha
expect_out "one" "get alpha"
expect_rc 1 "get absent" -- "$TALUS" get "$db" nosuchkey
[ ! -s "$work/out" ] && [ ! -s "$work/err" ] && ok || bad "get absent printed something"
expect_rc 0 "overwrite" -- "$TALUS" put "$db" alpha two
expect_rc 0 "get overwritten" -- "$TALUS" get "$db" alpha
expect_out "two" "get after overwrite"
expect_rc 0 "empty value" -- "$TALUS" put "$db" empty ""
expect_rc 0 "get empty value" -- "$TALUS" get "$db" empty
[ ! -s "$work/out" ] && ok || bad "empty value not empty"
expect_rc 2 "empty key" -- "$TALUS" put "$db" "" v

# --- binary values through stdin ---
printf 'a\000b\377c\nd\te\\f' >"$work/bin"
head -c 100000 /dev/urandom >"$work/big" 2>/dev/null ||
    dd if=/dev/urandom of="$work/big" bs=1000 count=100 2>/dev/null
expect_rc 0 "put stdin binary" -- sh -c "\"$TALUS\" put \"$db\" bin - <\"$work/bin\""
"$TALUS" get "$db" bin >"$work/got" && cmp -s "$work/got" "$work/bin" && ok ||
    bad "binary value round trip"
expect_rc 0 "put stdin 100 KB" -- sh -c "\"$TALUS\" put \"$db\" big - <\"$work/big\""
"$TALUS" get "$db" big >"$work/got" && cmp -s "$work/got" "$work/big" && ok ||
    bad "100 KB value round trip"

# --- options anywhere, and `--` ---
expect_rc 0 "option after args" -- "$TALUS" put "$db" sync1 v1 --sync
expect_rc 0 "option before command" -- "$TALUS" --sync put "$db" sync2 v2
expect_rc 0 "-- then dash key" -- "$TALUS" put "$db" -- -dash dashval
expect_rc 0 "get dash key" -- "$TALUS" get -- "$db" -dash
expect_out "dashval" "get -- -dash"

# --- delete ---
expect_rc 0 "del" -- "$TALUS" del "$db" alpha
expect_rc 1 "get deleted" -- "$TALUS" get "$db" alpha
expect_rc 0 "del absent key" -- "$TALUS" del "$db" alpha

# --- scan: order, prefix, reverse, keys-only, escaping ---
db2=$work/db2
for k in p/a p/b p/c q/x r; do
    "$TALUS" put "$db2" "$k" "v-$k" || bad "put $k"
done
expect_rc 0 "scan all" -- "$TALUS" scan "$db2"
printf 'p/a\tv-p/a\np/b\tv-p/b\np/c\tv-p/c\nq/x\tv-q/x\nr\tv-r\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "scan all output: $(cat "$work/out")"
expect_rc 0 "scan prefix" -- "$TALUS" scan "$db2" p/
printf 'p/a\tv-p/a\np/b\tv-p/b\np/c\tv-p/c\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "scan prefix output: $(cat "$work/out")"
expect_rc 0 "scan prefix reverse keys-only" -- "$TALUS" scan --reverse "$db2" p/ --keys-only
printf 'p/c\np/b\np/a\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "scan -r -k output: $(cat "$work/out")"
expect_rc 0 "scan reverse short opts" -- "$TALUS" scan -rk "$db2"
printf 'r\nq/x\np/c\np/b\np/a\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "scan -rk output: $(cat "$work/out")"
expect_rc 0 "scan no match" -- "$TALUS" scan "$db2" zzz
[ ! -s "$work/out" ] && ok || bad "scan of an absent prefix printed something"
expect_rc 2 "--reverse on get" -- "$TALUS" get --reverse "$db2" r

# escaping: tab, newline, backslash, NUL, 0xff in keys and values
printf 'x\ty\\z' >"$work/v"
expect_rc 0 "put escaped value" -- sh -c "\"$TALUS\" put \"$db2\" \"\$(printf 'e\\tk\\\\')\" - <\"$work/v\""
printf 'a\000\377' >"$work/v2"
expect_rc 0 "put NUL value" -- sh -c "\"$TALUS\" put \"$db2\" e2 - <\"$work/v2\""
expect_rc 0 "scan escaped" -- "$TALUS" scan "$db2" e
# (0x09 sorts before '2', so the TAB key comes first)
printf 'e\\x09k\\\\\tx\\x09y\\\\z\ne2\ta\\x00\\xff\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "escaped scan output: $(od -c "$work/out" | head)"

# hex keys and values
expect_rc 0 "put --hex" -- "$TALUS" --hex put "$db2" 00ff01 deadbeef
expect_rc 0 "get --hex" -- "$TALUS" get "$db2" 00ff01 -x
printf 'deadbeef\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "get --hex output: $(cat "$work/out")"
expect_rc 0 "scan --hex prefix" -- "$TALUS" scan --hex "$db2" 00
printf '00ff01\tdeadbeef\n' >"$work/want"
cmp -s "$work/want" "$work/out" && ok || bad "scan --hex output: $(cat "$work/out")"
expect_rc 2 "bad hex" -- "$TALUS" get --hex "$db2" 0g

# --- named trees ---
expect_rc 0 "put --tree" -- "$TALUS" put --tree foo "$db2" tk tv
expect_rc 0 "get -t" -- "$TALUS" get "$db2" tk -t foo
expect_out "tv" "get from tree foo"
expect_rc 1 "tree key not in default" -- "$TALUS" get "$db2" tk
expect_rc 2 "get from a missing tree" -- "$TALUS" get -t nosuchtree "$db2" tk
grep -q "no tree 'nosuchtree'" "$work/err" && ok || bad "missing tree message: $(cat "$work/err")"

# --- stats ---
expect_rc 0 "stats" -- "$TALUS" stats "$db2"
for word in "format version" "last seqno" "disk space" "approx entries" "L0" "tree default" \
    "tree foo"; do
    grep -q "$word" "$work/out" && ok || bad "stats output lacks '$word'"
done

# --- data survives between invocations (each one opens and closes) ---
expect_rc 0 "get after many opens" -- "$TALUS" get "$db" sync2
expect_out "v2" "get sync2"

# --- errors name the problem: a file where the database should be ---
: >"$work/notadir"
expect_rc 2 "db is a file" -- "$TALUS" get "$work/notadir" k
grep -q '^talus: ' "$work/err" && ok || bad "error message format: $(cat "$work/err")"

echo "cli_test: $pass checks passed, $fail failed"
if [ "$fail" -eq 0 ]; then
    echo "1 passed, 0 failed"
    exit 0
fi
echo "0 passed, 1 failed"
exit 1
