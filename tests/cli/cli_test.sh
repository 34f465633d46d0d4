#!/bin/sh
# cli_test.sh - end-to-end test of the `talus` admin CLI: put/get/del/scan
# round trips (prefix, reverse, keys-only, escaping, hex), binary values from
# stdin, exit codes (get of an absent key = 1, missing database = 2, usage
# errors = 2), options before and after the arguments, stats output, atomic
# batches (all or nothing, across trees, escapes, large), trees, persistent
# snapshots with reads at a seqno, and `talus snapshot MOUNTPOINT` when
# talusfs is built. Run from the build directory (as `make check` does) or
# with TALUS=path (and TALUSFS=path for the mount part).

# `A && ok || bad` is safe here: ok never fails.
# shellcheck disable=SC2015

TALUS=${TALUS:-./mount/talus}
if [ ! -x "$TALUS" ]; then
    echo "cli_test: $TALUS not built" >&2
    exit 99
fi
fs_bin=${TALUSFS:-$(dirname "$TALUS")/talusfs}
work=$(mktemp -d "${TMPDIR:-/tmp}/talus-cli-XXXXXX") || exit 99
fspid=
# Never leave a mount behind, nor delete files through one.
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
    if [ -n "$fspid" ]; then
        fusermount3 -uz "$work/mnt" 2>/dev/null
        kill "$fspid" 2>/dev/null
        sleep 1
        kill -9 "$fspid" 2>/dev/null
    fi
    if mountpoint -q "$work/mnt" 2>/dev/null; then
        echo "cli_test: $work/mnt still mounted: not removing $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 99' INT TERM HUP
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

# --- help documents the new commands and formats; lone -h is help too ---
expect_rc 0 "--help again" -- "$TALUS" --help
for word in "batch DB \[FILE\]" "weakdel \[-t TREE\] KEY" "trees DB" "snapshot DB list" \
    "snapshot MOUNTPOINT" "--at N" "Exit status" '\\s'; do
    grep -q -- "$word" "$work/out" && ok || bad "--help lacks '$word'"
done
expect_rc 0 "lone -h" -- "$TALUS" -h
grep -q '^Usage: talus' "$work/out" && ok || bad "talus -h does not print the usage"
expect_rc 2 "option not for this command" -- "$TALUS" put "$db" k v --at 1
grep -q "option '--at' does not apply to 'put'" "$work/err" && ok || bad "--at on put: $(cat "$work/err")"
expect_rc 2 "--at not a number" -- "$TALUS" get "$db" k --at 12x

# --- batch: one atomic batch, across trees, from stdin or a file ---
db3=$work/db3
cat >"$work/b1" <<'EOF'
# a comment, then a blank line

put k1 v1
put -t logs 2026/x hello\sworld
	del nothing
tree t2
put k ""
put --tree logs e ""
weakdel w
put k2 \x2dt
EOF
expect_rc 0 "batch from stdin" -- sh -c "\"$TALUS\" batch -v \"$db3\" <\"$work/b1\""
seq1=$(cat "$work/out")
case $seq1 in '' | *[!0-9]*) bad "batch -v printed [$seq1], not a seqno" ;; *) ok ;; esac
expect_rc 0 "get batch key" -- "$TALUS" get "$db3" k1
expect_out "v1" "batch put k1"
expect_rc 0 "get batch key, -t line" -- "$TALUS" get -t logs "$db3" 2026/x
expect_out "hello world" "batch \\s escape"
expect_rc 0 "get batch key, tree line" -- "$TALUS" get -t t2 "$db3" k
[ ! -s "$work/out" ] && ok || bad "batch \"\" is not the empty value"
expect_rc 0 "get after tree line" -- "$TALUS" get -t t2 "$db3" k2
expect_out "-t" "batch \\x2dt value"
expect_rc 1 "k2 went to t2, not default" -- "$TALUS" get "$db3" k2
expect_rc 0 "empty value via --tree field" -- "$TALUS" get -t logs "$db3" e
expect_rc 0 "trees after batch" -- "$TALUS" trees "$db3"
expect_out "default
logs
t2
" "trees listing"
expect_rc 0 "stats after batch" -- "$TALUS" stats "$db3"
grep -q "^  seqno  *$seq1\$" "$work/out" && ok || bad "a batch is not one seqno: $(head -3 "$work/out")"

# all or nothing: a malformed line 4 applies nothing, not even lines 1-3,
# and the tree line 2 created is gone again
printf 'put a1 x\nput -t newtree a2 y\ndel k1\nput a3\nput a4 z\n' >"$work/bad"
expect_rc 2 "malformed batch" -- "$TALUS" batch "$db3" "$work/bad"
grep -q "^talus: $work/bad:4: " "$work/err" && ok || bad "batch error lacks file:line: $(cat "$work/err")"
grep -q "not applied" "$work/err" && ok || bad "batch error does not say nothing was applied"
expect_rc 1 "nothing applied (put)" -- "$TALUS" get "$db3" a1
expect_rc 0 "nothing applied (del)" -- "$TALUS" get "$db3" k1
expect_rc 0 "trees after failed batch" -- "$TALUS" trees "$db3"
expect_out "default
logs
t2
" "a failed batch leaves no tree behind"
expect_rc 0 "stats after failed batch" -- "$TALUS" stats "$db3"
grep -q "^  seqno  *$seq1\$" "$work/out" && ok || bad "a failed batch changed the seqno"
# every kind of malformed line, always on line 2 after a good line 1
head -c 65537 /dev/zero | tr '\000' k >"$work/longkey"
# shellcheck disable=SC1003 # (a trailing backslash is the point)
for line in 'frob a b' 'put onlykey' 'del' 'put a b c' 'put k \q' 'put k \x4' 'put k \xg0' \
    'put k ab\' 'put "" v' 'tree' 'tree a b' 'put -t' 'del -t "" k' 'tree \x00' \
    "put $(cat "$work/longkey") v"; do
    printf 'put good1 v\n%s\n' "$line" >"$work/bad"
    expect_rc 2 "malformed: $(printf '%s' "$line" | head -c 30)" -- "$TALUS" batch "$db3" "$work/bad"
    grep -q ":2: " "$work/err" && ok || bad "no line number for [$(printf '%s' "$line" | head -c 30)]: $(head -c 300 "$work/err")"
done
expect_rc 1 "no malformed batch applied its good line" -- "$TALUS" get "$db3" good1
expect_rc 2 "batch: missing file" -- "$TALUS" batch "$db3" "$work/nosuchfile"
expect_rc 2 "batch: --hex is refused" -- "$TALUS" batch --hex "$db3" "$work/b1"
printf 'put synced yes\n' >"$work/b2"
expect_rc 0 "batch --sync, '-' is stdin" -- sh -c "\"$TALUS\" batch --sync \"$db3\" - <\"$work/b2\""
expect_rc 0 "get synced" -- "$TALUS" get "$db3" synced
expect_out "yes" "batch --sync"
printf 'put inlogs 1\n' >"$work/b2"
expect_rc 0 "batch --tree sets the first current tree" -- "$TALUS" batch -t logs "$db3" "$work/b2"
expect_rc 0 "get from --tree batch" -- "$TALUS" get -t logs "$db3" inlogs

# escapes: every byte value, and spaces/TABs/backslashes/newlines in keys
printf 'put allbytes ' >"$work/b3"
i=0
: >"$work/allbytes"
while [ $i -lt 256 ]; do
    printf '\\x%02X' $i >>"$work/b3"
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $i)" >>"$work/allbytes"
    i=$((i + 1))
done
printf '\nput sp\\sa\\tb\\\\c\\nd q"q\nput qq \\x22"\n' >>"$work/b3"
expect_rc 0 "batch with escapes" -- "$TALUS" batch "$db3" "$work/b3"
"$TALUS" get "$db3" allbytes >"$work/got" && cmp -s "$work/got" "$work/allbytes" && ok ||
    bad "all 256 byte values through batch: $(od -An -tx1 "$work/got" | head -3)"
expect_rc 0 "get escaped key" -- "$TALUS" get "$db3" "$(printf 'sp a\tb\\c\nd')"
expect_out 'q"q' "key with space, TAB, backslash and newline"
expect_rc 0 "get literal quotes" -- "$TALUS" get "$db3" qq
expect_out '""' "\\x22\" is two quotes, not the empty string"
# scan --as-batch | batch copies a tree exactly, binary bytes included
"$TALUS" scan "$db3" --as-batch >"$work/dump" && ok || bad "scan --as-batch"
grep -q '^put sp\\sa\\x09b\\\\c\\x0ad q"q$' "$work/dump" && ok ||
    bad "--as-batch line: $(grep '^put sp' "$work/dump")"
expect_rc 0 "load the dump" -- "$TALUS" batch "$work/db4" "$work/dump"
"$TALUS" scan "$db3" >"$work/s3" && "$TALUS" scan "$work/db4" >"$work/s4" &&
    cmp -s "$work/s3" "$work/s4" && ok || bad "scan --as-batch | batch is not a copy"
"$TALUS" scan -t logs --as-batch "$db3" >"$work/dump" && head -1 "$work/dump" >"$work/out"
expect_out "tree logs
" "--as-batch --tree starts with a tree line"
expect_rc 2 "--as-batch with --hex" -- "$TALUS" scan --as-batch --hex "$db3"

# a large batch streams in (the batch is the memory)
awk 'BEGIN { for (i = 0; i < 100000; i++) printf "put key%06d value\\s%d\n", i, i }' \
    >"$work/b5"
expect_rc 0 "100,000-line batch" -- "$TALUS" batch -v "$work/db5" "$work/b5"
expect_rc 0 "get from large batch" -- "$TALUS" get "$work/db5" key099999
expect_out "value 99999" "last key of the large batch"
[ "$("$TALUS" scan -k "$work/db5" | wc -l)" -eq 100000 ] && ok || bad "large batch key count"

# --- trees ---
expect_rc 0 "trees --create" -- "$TALUS" trees "$db3" --create foo
expect_rc 0 "trees" -- "$TALUS" trees "$db3"
expect_out "default
foo
logs
t2
" "trees after --create"
expect_rc 2 "create existing tree" -- "$TALUS" trees "$db3" --create foo
grep -q "already exists" "$work/err" && ok || bad "create existing: $(cat "$work/err")"
expect_rc 0 "trees --drop" -- "$TALUS" trees --drop foo "$db3"
expect_rc 2 "drop missing tree" -- "$TALUS" trees --drop foo "$db3"
grep -q "no tree 'foo'" "$work/err" && ok || bad "drop missing: $(cat "$work/err")"
expect_rc 2 "drop default" -- "$TALUS" trees --drop default "$db3"
expect_rc 2 "create and drop" -- "$TALUS" trees --drop a --create b "$db3"
expect_rc 2 "trees: missing db" -- "$TALUS" trees "$work/nodb"
expect_rc 2 "trees: --tree refused" -- "$TALUS" trees -t logs "$db3"

# --- persistent snapshots and reads at a seqno ---
db6=$work/db6
"$TALUS" put "$db6" k v1 && "$TALUS" put "$db6" other o1 || bad "put for snapshots"
expect_rc 0 "snapshot DB (pin current)" -- "$TALUS" snapshot "$db6"
s1=$(cat "$work/out")
"$TALUS" stats "$db6" | grep -q "^  seqno  *$s1\$" && ok || bad "snapshot did not pin the current seqno ($s1)"
"$TALUS" put "$db6" k v2 || bad "put v2"
expect_rc 0 "snapshot DB pin" -- "$TALUS" snapshot "$db6" pin
s2=$(cat "$work/out")
[ "$s2" -eq $((s1 + 1)) ] && ok || bad "second pin: $s2, expected $((s1 + 1))"
"$TALUS" put "$db6" k v3 && "$TALUS" del "$db6" other && "$TALUS" put "$db6" k v4 ||
    bad "writes after the pins"
expect_rc 0 "get --at s1" -- "$TALUS" get "$db6" k --at "$s1"
expect_out "v1" "value at the first snapshot"
expect_rc 0 "get --at s2" -- "$TALUS" get --at "$s2" "$db6" k
expect_out "v2" "value at the second snapshot"
expect_rc 0 "get latest" -- "$TALUS" get "$db6" k
expect_out "v4" "latest value"
expect_rc 0 "get deleted key --at" -- "$TALUS" get "$db6" other --at "$s2"
expect_out "o1" "deleted key still at the snapshot"
expect_rc 1 "deleted key now" -- "$TALUS" get "$db6" other
expect_rc 0 "scan --at" -- "$TALUS" scan --at "$s1" "$db6"
expect_out "k	v1
other	o1
" "scan at the first snapshot"
cur=$((s2 + 3))
expect_rc 2 "get --at future" -- "$TALUS" get "$db6" k --at $((cur + 1))
expect_rc 2 "get --at unretained" -- "$TALUS" get "$db6" k --at $((cur - 1))
grep -q "no longer retained" "$work/err" && ok || bad "unretained read: $(cat "$work/err")"
expect_rc 2 "pin unretained" -- "$TALUS" snapshot "$db6" pin $((cur - 1))
grep -q "no longer retained" "$work/err" && ok || bad "unretained pin: $(cat "$work/err")"
expect_rc 0 "snapshot list" -- "$TALUS" snapshot "$db6" list
cut -f1 "$work/out" >"$work/got"
printf '%s\n%s\n' "$s1" "$s2" >"$work/want"
cmp -s "$work/want" "$work/got" && ok || bad "snapshot list: $(cat "$work/out")"
awk -F '\t' 'NF != 2 || $2 !~ /^[0-9]+$/ { exit 1 }' "$work/out" && ok || bad "list bytes column: $(cat "$work/out")"
expect_rc 0 "snapshot list -h" -- "$TALUS" snapshot -h "$db6" list
awk -F '\t' 'NF != 2 || $2 !~ /^[0-9.]+ (B|KiB|MiB|GiB)$/ { exit 1 }' "$work/out" && ok ||
    bad "list -h: $(cat "$work/out")"
expect_rc 0 "stats with pins" -- "$TALUS" stats "$db6"
grep -q "pinned snapshots   2 " "$work/out" && ok || bad "stats pins: $(grep pinned "$work/out")"
expect_rc 0 "unpin s1" -- "$TALUS" snapshot "$db6" unpin "$s1"
expect_rc 2 "unpin s1 again" -- "$TALUS" snapshot "$db6" unpin "$s1"
grep -q "no snapshot pinned at seqno $s1" "$work/err" && ok || bad "unpin twice: $(cat "$work/err")"
expect_rc 2 "get --at an unpinned seqno" -- "$TALUS" get "$db6" k --at "$s1"
expect_rc 0 "pin again is a no-op" -- "$TALUS" snapshot "$db6" pin "$s2"
expect_rc 0 "rm s2" -- "$TALUS" snapshot "$db6" rm "$s2"
expect_rc 0 "list after unpinning all" -- "$TALUS" snapshot "$db6" list
[ ! -s "$work/out" ] && ok || bad "snapshots left: $(cat "$work/out")"
expect_rc 2 "pin not a number" -- "$TALUS" snapshot "$db6" pin 1x
expect_rc 2 "unpin without N" -- "$TALUS" snapshot "$db6" unpin
expect_rc 2 "unknown snapshot action" -- "$TALUS" snapshot "$db6" frob
expect_rc 2 "list with N" -- "$TALUS" snapshot "$db6" list 3
expect_rc 2 "snapshot: missing db" -- "$TALUS" snapshot "$work/nodb" list
grep -q "no database at" "$work/err" && ok || bad "snapshot missing db: $(cat "$work/err")"

# --- talus snapshot MOUNTPOINT, through a real talusfs mount ---
if [ -n "$fs_bin" ] && [ -x "$fs_bin" ] && [ -c /dev/fuse ] &&
    command -v fusermount3 >/dev/null && command -v mountpoint >/dev/null; then
    dbm=$work/dbm
    mnt=$work/mnt
    mkdir "$mnt"
    "$TALUS" put --tree data "$dbm" f "old contents" || bad "put for the mount"
    "$fs_bin" -f "$dbm" "$mnt" >"$work/talusfs.log" 2>&1 &
    fspid=$!
    i=0
    while ! mountpoint -q "$mnt" && kill -0 "$fspid" 2>/dev/null && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if mountpoint -q "$mnt"; then
        ok
        expect_rc 0 "snapshot MOUNTPOINT" -- timeout 20 "$TALUS" snapshot "$mnt"
        path=$(cat "$work/out")
        snap=${path##*/}
        case $path in
        "$mnt/.snap/"[0-9]*) ok ;;
        *) bad "snapshot MOUNTPOINT printed [$path]" ;;
        esac
        [ -d "$path" ] && ok || bad "$path is not a directory"
        printf 'new contents' >"$work/new" && timeout 20 cp "$work/new" "$mnt/f" ||
            bad "write through the mount"
        timeout 20 cat "$path/f" >"$work/out" 2>"$work/err"
        expect_out "old contents" "the snapshot keeps the old file"
        expect_rc 0 "snapshot MOUNTPOINT list" -- timeout 20 "$TALUS" snapshot "$mnt" list
        grep -qx "$snap" "$work/out" && ok || bad "mount list lacks $snap: $(cat "$work/out")"
        expect_rc 2 "snapshot DB while mounted" -- timeout 20 "$TALUS" snapshot "$dbm" pin
        grep -q "talus snapshot MOUNTPOINT" "$work/err" && ok || bad "no hint: $(cat "$work/err")"
        expect_rc 0 "pin a second one" -- timeout 20 "$TALUS" snapshot "$mnt/" pin
        snap2=$(basename "$(cat "$work/out")")
        expect_rc 0 "rm the first" -- timeout 20 "$TALUS" snapshot "$mnt" rm "$snap"
        expect_rc 0 "list after rm" -- timeout 20 "$TALUS" snapshot "$mnt" list
        grep -qx "$snap" "$work/out" && bad "$snap still listed after rm" || ok
        expect_rc 2 "rm a missing one" -- timeout 20 "$TALUS" snapshot "$mnt" rm "$snap"
    else
        bad "talusfs did not mount: $(tail -5 "$work/talusfs.log")"
    fi
    timeout 20 fusermount3 -u "$mnt" 2>/dev/null
    i=0
    while kill -0 "$fspid" 2>/dev/null && [ $i -lt 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$fspid" 2>/dev/null; then
        bad "talusfs did not exit after unmount"
    else
        fspid=
        # pins made through the mount are in the database, not in the mount
        expect_rc 0 "snapshot list after unmount" -- "$TALUS" snapshot "$dbm" list
        cut -f1 "$work/out" >"$work/got"
        [ "$(cat "$work/got")" = "${snap2:-none}" ] && ok ||
            bad "after unmount: [$(cat "$work/got")], expected [$snap2]"
    fi
else
    echo "cli_test: talusfs not built (or no FUSE): skipping the snapshot MOUNTPOINT checks"
fi

echo "cli_test: $pass checks passed, $fail failed"
if [ "$fail" -eq 0 ]; then
    echo "1 passed, 0 failed"
    exit 0
fi
echo "0 passed, 1 failed"
exit 1
