#!/bin/bash
# api.sh - the mount and the key-value API see the same data (DESIGN.md
# section 6, fs/KEYS.md).
#
#  - keys written with `talus` while the database is not mounted appear as
#    files after mounting, under exactly the paths fs/KEYS.md gives, hostile
#    keys included (NUL, '%', empty components, '.', '..', a root ".snap", a
#    300-byte component, a key that is both a file and a directory, control
#    and non-UTF-8 bytes, directory markers), and `cat` of each path returns
#    the value; nothing else is listed;
#  - names that are not canonical encodings do not exist and cannot be
#    created;
#  - files written, overwritten and removed through the mount (under escaped
#    names too) are what `talus get`/`scan` return after unmounting;
#  - changes made with `talus` between mounts are seen by the next mount,
#    also for files that have an attribute record.
. "$(dirname "$0")/lib.sh"
mt_init 120

db=$W/db
mnt=$W/mnt
L253=$(printf 'L%.0s' $(seq 1 253))
L47=$(printf 'L%.0s' $(seq 1 47))
Q10=QQQQQQQQQQ

# Key (in the batch/scan escaping of `talus`), value, expected path.
# Values are distinct so that a file found at the wrong path shows.
KEYS=(
    'plain/file.txt' 'v-plain' 'plain/file.txt'
    'logs/2026/x' 'v-logs' 'logs/2026/x'
    '50%/x' 'v-pct' '50%/x'
    '100%' 'v-100pct' '100%'
    '%25' 'v-pct25' '%2525'
    'a%f' 'v-pctf' 'a%25f'
    'pct%2E' 'v-pct2E' 'pct%252E'
    'q%+' 'v-pctplus' 'q%25+'
    'a%41b' 'v-pct41' 'a%41b'
    'nul\x00byte' 'v-nul' 'nul%00byte'
    '/lead' 'v-lead' '%e/lead'
    'e//b' 'v-emptycomp' 'e/%e/b'
    'x/../y' 'v-dotdot' 'x/%2E./y'
    'x/./z' 'v-dot' 'x/%2E/z'
    '..' 'v-rootdotdot' '%2E.'
    '.snap' 'v-snapfile' '%2Esnap%f'
    '.snap/1' 'v-snapdir' '%2Esnap/1'
    'sub/.snap' 'v-subsnap' 'sub/.snap'
    '%e' 'v-pcte' '%25e'
    "long/L$(printf 'L%.0s' $(seq 1 299))" 'v-long' "long/$L253%+/$L47"
    'c' 'v-conflict-file' 'c%f'
    'c/d' 'v-conflict-dir' 'c/d'
    'ctl/\x01\x7f\xff' 'v-ctl' $'ctl/\x01\x7f\xff'
    'tab\there' 'v-tab' $'tab\there'
    'space\sname' 'v-space' 'space name'
    '...' 'v-dots' '...'
    '.x' 'v-dotx' '.x'
    'dirval/' 'v-dirval' 'dirval/%e'
    'empty' '""' 'empty'
    'caf\xc3\xa9\smenu' 'v-utf8' 'café menu'
)
NK=$((${#KEYS[@]} / 3))

{
    echo 'tree data'
    for ((i = 0; i < NK; i++)); do echo "put ${KEYS[3 * i]} ${KEYS[3 * i + 1]}"; done
    echo 'put emptydir/ ""'
    echo 'put keep/me v-keep'
    echo 'put small v-small'
} >"$W/batch"
check "talus batch writes the keys (db not mounted)" "$TALUS" batch "$db" "$W/batch"
check "talus --hex put of a key with NUL and 0x01" "$TALUS" -t data -x put "$db" 6865786b65790001 762d686578
check "talus put of a 1 MiB value from stdin" bash -c "head -c 1048576 /dev/urandom | tee '$W/big.ref' | '$TALUS' -t data put '$db' big.bin -"

mt_mount "$db" "$mnt" || mt_finish

# --- every key is visible under its documented path -------------------------------
for ((i = 0; i < NK; i++)); do
    k=${KEYS[3 * i]} v=${KEYS[3 * i + 1]} p=${KEYS[3 * i + 2]}
    [ "$v" = '""' ] && v=
    if [ -f "$mnt/$p" ]; then
        expect_eq "cat of key '$k' at path '$p'" "$(cat "$mnt/$p" 2>&1)" "$v"
    else
        bad "key '$k': no file at the documented path '$(printf '%q' "$p")' ($(ls -d "$mnt/$p" 2>&1 | head -c 200))"
    fi
done
expect_eq "hex-put key at hexkey%00<0x01>" "$(cat "$mnt/hexkey%00"$'\x01' 2>&1)" v-hex
check "1 MiB value from the CLI reads back" cmp "$mnt/big.bin" "$W/big.ref"
check "a directory marker key is an empty directory" test -d "$mnt/emptydir"
expect_eq "the marker directory lists nothing" "$(ls -A "$mnt/emptydir" 2>&1)" ""
check "the conflict key 'c' is shown as a directory c" test -d "$mnt/c"
check "the root key .snap is shown as the directory %2Esnap" test -d "$mnt/%2Esnap"
check "a 300-byte component is a continuation directory" test -d "$mnt/long/$L253%+"
expect_eq "type and mode of a key without attributes" "$(stat -c '%F %a' "$mnt/plain/file.txt" 2>&1)" "regular file 644"
expect_eq "size of a key without attributes is the value's length" "$(stat -c %s "$mnt/logs/2026/x" 2>&1)" 6
expect_eq "an empty value is an empty regular file" "$(stat -c '%F %s' "$mnt/empty" 2>&1)" "regular empty file 0"
expect_eq "type of an implied directory" "$(stat -c '%F' "$mnt/logs/2026" 2>&1)" directory

# Nothing else is listed: the files found are exactly the keys.
{
    for ((i = 0; i < NK; i++)); do printf '%s\n' "${KEYS[3 * i + 2]}"; done
    printf '%s\n' hexkey%00$'\x01' big.bin keep/me small
} | LC_ALL=C sort >"$W/files.want"
(cd "$mnt" && find . -type f -printf '%P\n' | LC_ALL=C sort) >"$W/files.got"
check "find lists exactly one file per key, at its documented path" diff "$W/files.want" "$W/files.got"
(cd "$mnt" && find . -type d -printf '%P\n' | LC_ALL=C sort) >"$W/dirs.got"
printf '%s\n' '' %2Esnap %e 50% c ctl dirval e e/%e emptydir keep logs logs/2026 long "long/$L253%+" \
    plain sub x x/%2E x/%2E. | LC_ALL=C sort >"$W/dirs.want"
check "find lists exactly the implied directories" diff "$W/dirs.want" "$W/dirs.got"
check "the root listing has no .snap" bash -c "! ls -a '$mnt' | grep -qx .snap"

# --- non-canonical names do not exist and cannot be created ------------------------
L252=${L253%L}
for n in '50%25' '%25' '100%25' 'a%2541b' 'x%2E' '%2Ex' '%f' '%2E%2E' '%2Esnap2' '%e%e' 'sub/%2Esnap' \
    'e/%E/b' 'x/%2e/z' "long/$L252%+/$L47" 'c%F' 'keep%f' 'plain%f' 'nul%0byte' '%41'; do
    check_fail "name '$n' does not exist" "No such file or directory" stat "$mnt/$n"
done
for n in '100%25' 'x%2E' '%f' 'a%+' 'p%2Ex'; do
    check_fail "creating the non-canonical name '$n' is refused" "" touch "$mnt/$n"
    check "no '$n' appeared" test ! -e "$mnt/$n"
done
check_fail "mkdir of a non-canonical name is refused" "" mkdir "$mnt/%2525x%25"
check_fail "mkdir of a continuation name is refused" "" mkdir "$mnt/dir%+"
check "creating a name with a literal % works (100%%)" bash -c "echo -n v-new100 > '$mnt/new100%'"
check "creating a name with %41 and %2e (literal) works" bash -c "echo -n v-lit > '$mnt/lit%41%2e%d%%'"

# --- writes through the mount ----------------------------------------------------
check "write a file in the directory 50%" bash -c "echo -n v-pcty > '$mnt/50%/y'"
check "write .snapshot at the root" bash -c "echo -n v-snapshot > '$mnt/.snapshot'"
check "write below an escaped '..' component" bash -c "echo -n v-dotdotw > '$mnt/x/%2E./w'"
check "write below an escaped empty component" bash -c "echo -n v-leadnew > '$mnt/%e/new'"
check "write in a continuation directory (a 263-byte component)" bash -c "echo -n v-longq > '$mnt/long/$L253%+/$Q10'"
check "overwrite the file side of a conflict (c%f)" bash -c "echo -n v-conflict-new > '$mnt/c%f'"
check "write a 1 MiB file" cp "$W/big.ref" "$mnt/mnt-big"
check "write a small file" bash -c "echo -n abc > '$mnt/mnt-small'"
check "chmod a CLI-written file (gives it an attribute record)" chmod 600 "$mnt/small"
check "mkdir an empty directory" mkdir "$mnt/newdir"
check "mkdir + file" bash -c "mkdir '$mnt/fromdir' && echo -n v-fromdir > '$mnt/fromdir/file'"
check "rm of a CLI-written file" rm "$mnt/plain/file.txt"
check "rm of the NUL key's file" rm "$mnt/nul%00byte"
check "rename a CLI-written file to a name with %" mv "$mnt/keep/me" "$mnt/keep/me%too"
check_fail "rename to a non-canonical name is refused" "" mt_python -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$mnt/keep/me%too" "$mnt/keep/me%25too"
check "write a file whose key needs %25 (key a%2Eb is a%252Eb)" bash -c "echo -n v-esc > '$mnt/a%252Eb'"
expect_eq "the new files read back" "$(cat "$mnt/50%/y" "$mnt/.snapshot" "$mnt/long/$L253%+/$Q10" 2>&1)" v-pctyv-snapshotv-longq
mt_umount "$mnt"

# --- and talus sees them -------------------------------------------------------
tget() { "$TALUS" -t data get "$db" "$@"; }
expect_eq "talus get 50%/y" "$(tget '50%/y' 2>&1)" v-pcty
expect_eq "talus get .snapshot" "$(tget .snapshot 2>&1)" v-snapshot
expect_eq "talus get x/../w" "$(tget x/../w 2>&1)" v-dotdotw
expect_eq "talus get /new" "$(tget /new 2>&1)" v-leadnew
expect_eq "talus get of the 263-byte component" "$(tget "long/$L253$Q10" 2>&1)" v-longq
expect_eq "talus get c (conflict file written as c%f)" "$(tget c 2>&1)" v-conflict-new
expect_eq "talus get c/d untouched" "$(tget c/d 2>&1)" v-conflict-dir
check "talus get of the 1 MiB file written through the mount" bash -c "'$TALUS' -t data get '$db' mnt-big | cmp - '$W/big.ref'"
expect_eq "talus get fromdir/file" "$(tget fromdir/file 2>&1)" v-fromdir
expect_eq "talus get keep/me%too (renamed)" "$(tget 'keep/me%too' 2>&1)" v-keep
expect_eq "talus get new100%" "$(tget 'new100%' 2>&1)" v-new100
expect_eq "talus get lit%41%2e%d%%" "$(tget 'lit%41%2e%d%%' 2>&1)" v-lit
expect_eq "talus get a%2Eb (written as a%252Eb)" "$(tget 'a%2Eb' 2>&1)" v-esc
check_fail "the old name of a renamed file is gone" "" tget keep/me
check_fail "a file removed through the mount is gone" "" tget plain/file.txt
check_fail "the NUL key removed through the mount is gone" "" "$TALUS" -t data -x get "$db" 6e756c00627974
expect_eq "mkdir made a directory marker newdir/ (empty value)" "$(tget newdir/ 2>&1; echo "rc=$?")" "rc=0"
check "the meta tree has a record for a file made through the mount" "$TALUS" -t meta get "$db" mnt-small
check "talus scan -k of the data tree" "$TALUS" -t data scan -k "$db"
keep scan.out
for k in '50%/y' '.snapshot' 'x/../w' '/new' "long/$L253$Q10" 'c' 'mnt-big' 'mnt-small' 'keep/me%too' \
    'hexkey\x00\x01' 'ctl/\x01\x7f\xff' 'tab\x09here' 'emptydir/' 'small'; do
    check "scan lists '$k'" grep -qxF -- "$k" "$W/scan.out"
done
check "scan does not list removed keys" bash -c "! grep -qxF -e plain/file.txt -e 'nul\\x00byte' -e keep/me '$W/scan.out'"

# --- changes made with talus between mounts ---------------------------------------------
check "talus put over a file that has attributes" "$TALUS" -t data put "$db" mnt-small abcdefgh
check "talus put over a CLI file that got attributes" "$TALUS" -t data put "$db" small v-small-changed-longer
check "talus del of a file that has attributes" "$TALUS" -t data del "$db" fromdir/file
check "talus put of a new key" "$TALUS" -t data put "$db" later/added v-later
mt_mount "$db" "$mnt" || mt_finish
expect_eq "new contents after a CLI put" "$(cat "$mnt/mnt-small" 2>&1)" abcdefgh
expect_eq "size follows the value, not a stale attribute" "$(stat -c %s "$mnt/mnt-small" 2>&1)" 8
expect_eq "CLI put over a chmod'ed file: contents" "$(cat "$mnt/small" 2>&1)" v-small-changed-longer
expect_eq "CLI put over a chmod'ed file: size" "$(stat -c %s "$mnt/small" 2>&1)" 22
expect_eq "CLI put over a chmod'ed file: mode kept" "$(stat -c %a "$mnt/small" 2>&1)" 600
check "a key deleted with the CLI is gone (its attribute record does not resurrect it)" test ! -e "$mnt/fromdir/file"
expect_eq "a key added with the CLI is visible" "$(cat "$mnt/later/added" 2>&1)" v-later
mt_umount "$mnt"
mt_finish
