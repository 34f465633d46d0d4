#!/bin/bash
# crash.sh - SIGKILL of talusfs (a process crash), then remove the dead
# mount and mount again:
#  - a file written with `dd conv=fsync`, and one written and fsync'd with
#    python, are whole;
#  - a file fsync'd through another, read-only descriptor is whole;
#  - the safe-save pattern (write temp, fsync, rename, fsync the directory)
#    leaves the new file under its final name;
#  - a file that was being rewritten (open, not closed) at the kill is the
#    old version or the complete new one, never a mix;
#  - mounted with -o blob_size=64K, so most of these files are blob files;
#  - kills in the middle of parallel writers, three rounds: every file is
#    either absent or exactly what its writer wrote (writes are committed
#    atomically at close), and the database always mounts again.
. "$(dirname "$0")/lib.sh"
mt_init 150
have_python || mt_error "python3 is needed"

db=$W/db
mnt=$W/mnt

mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish

mt_bytes crash1 3000000 >"$W/ref1"
mt_bytes crash2 70000 >"$W/ref2"
mt_bytes old 500000 >"$W/old"
mt_bytes saved 12345 >"$W/saved"
check "write with dd conv=fsync" dd if="$W/ref1" of="$mnt/fsynced" bs=64k conv=fsync status=none
check "write with python and os.fsync" mt_python -c '
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
for i in range(0, len(data), 4096):
    os.write(fd, data[i:i + 4096])
os.fsync(fd)
os.close(fd)' "$W/ref2" "$mnt/pyfsync"
check "an fsync'd old version of a file" dd if="$W/old" of="$mnt/atomic" bs=64k conv=fsync status=none
check "safe save: temp, fsync, rename, fsync the directory" mt_python -c '
import os, sys
d = sys.argv[2] + "/docs"
os.mkdir(d)
fd = os.open(d + "/report.tmp", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, open(sys.argv[1], "rb").read())
os.fsync(fd)
os.close(fd)
os.rename(d + "/report.tmp", d + "/report")
dfd = os.open(d, os.O_RDONLY)
os.fsync(dfd)
os.close(dfd)' "$W/saved" "$mnt"
echo "closed, not fsynced" >"$mnt/closed-only"
# fsync through another (read-only) descriptor makes the file durable, as
# `sync FILE` expects; the writer's descriptor stays open across the kill.
"$PY" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, b"synced by a reader\n")
ro = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(ro)
os.close(ro)
open(sys.argv[2], "w").close()
time.sleep(60)' "$mnt/ro-fsync" "$W/ro-synced" &
ropid=$!
for i in $(seq 1 100); do [ -e "$W/ro-synced" ] && break; sleep 0.1; done
check "fsync through a read-only descriptor returned" test -e "$W/ro-synced"

# A rewrite in progress when the process dies: 1 MiB written, never closed.
"$PY" -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"N" * 1048576)
open(sys.argv[2], "w").close()
time.sleep(60)' "$mnt/atomic" "$W/rewriting" &
rpid=$!
for i in $(seq 1 100); do [ -e "$W/rewriting" ] && break; sleep 0.1; done
check "the rewriter is in the middle of its write" test -e "$W/rewriting"

mt_crash "$mnt"
check_fail "the dead mount answers ENOTCONN" "Transport endpoint is not connected" stat "$mnt/fsynced"
kill "$rpid" "$ropid" 2>/dev/null
wait "$rpid" "$ropid" 2>/dev/null
check "fusermount3 -u of the dead mount" fusermount3 -u "$mnt" || mt_force_unmount "$mnt"
check "the dead mount is gone" mt_not_mounted "$mnt"

mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish
check "the dd conv=fsync file is whole after the crash" cmp "$W/ref1" "$mnt/fsynced"
check "the python os.fsync file is whole after the crash" cmp "$W/ref2" "$mnt/pyfsync"
check "the safe-saved file is there under its final name" cmp "$W/saved" "$mnt/docs/report"
check "the file fsync'd through a read-only descriptor survived" \
    test "$(cat "$mnt/ro-fsync" 2>&1)" = "synced by a reader"
check "no temp file left by the safe save" test ! -e "$mnt/docs/report.tmp"
if cmp -s "$W/old" "$mnt/atomic"; then
    ok "the file being rewritten is the old version"
elif cmp -s <(head -c 1048576 /dev/zero | tr '\0' N) "$mnt/atomic"; then
    ok "the file being rewritten is the complete new version"
else
    bad "the file being rewritten at the crash is neither the old nor the new version (size $(stat -c %s "$mnt/atomic" 2>&1))"
fi
if [ "$(cat "$mnt/closed-only" 2>/dev/null)" = "closed, not fsynced" ]; then
    say "note: a closed but not fsync'd file survived the crash (durability buffered or better)"
else
    say "note: a closed but not fsync'd file was lost in the crash (allowed by durability=none)"
fi

# --- kills in the middle of parallel writers ------------------------------------------
# Writer w writes files r<round>/w<w>-<i>; the content of each is a function
# of its name, so after the crash every file present must be exactly that,
# or empty: the state after open(O_CREAT) and before the close committed the
# contents (the old version of a new file).
writer() {
    local r=$1 w=$2 i
    for i in $(seq 1 400); do
        mt_bytes "$r.$w.$i" $(((i * 7919) % 200000 + 1)) >"$mnt/r$r/w$w-$i" 2>/dev/null || return 0
    done
}
verify_round() {
    local r=$1 f n=0 e=0 name w i
    for f in "$mnt/r$r"/*; do
        [ -e "$f" ] || continue
        name=${f##*/}
        w=${name%%-*}
        w=${w#w}
        i=${name#*-}
        case $name in *.tmp | *~) continue ;; esac
        if [ ! -s "$f" ]; then
            e=$((e + 1))
            continue
        fi
        if ! cmp -s "$f" <(mt_bytes "$r.$w.$i" $(((i * 7919) % 200000 + 1))); then
            echo "r$r/$name: torn or wrong (size $(stat -c %s "$f"))"
            return 1
        fi
        n=$((n + 1))
    done
    echo "$n files intact, $e empty (created, contents not committed)"
}
for r in 1 2 3; do
    mkdir -p "$mnt/r$r"
    wp=()
    for w in 1 2 3; do
        writer "$r" "$w" 2>/dev/null &
        wp+=($!)
    done
    sleep "0.$((r * 3))"
    mt_crash "$mnt"
    for p in "${wp[@]}"; do wait "$p" 2>/dev/null; done
    mt_force_unmount "$mnt" || bad "round $r: the dead mount would not go away"
    mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish
    check "round $r: every file written before the kill is absent or whole" verify_round "$r"
    say "round $r: $(cat "$W/out")"
    check "round $r: the fsync'd file is still whole" cmp "$W/ref1" "$mnt/fsynced"
    check "round $r: the mount accepts writes after the crash" bash -c "echo ok > '$mnt/after$r' && test \$(cat '$mnt/after$r') = ok"
done
mt_umount "$mnt"
# Blob files whose batches never committed (killed mid-commit) are orphans
# the next open removes: after a clean mount and unmount, every blob file
# is named by the database and no temporary file is left.
mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish
mt_umount "$mnt"
check "no temporary blob or table files left after the crashes" mt_no_tmp "$db"
check "blob files on disk match the database's count" bash -c '
    on_disk=$(find "$1/trees" -name "*.blob" | wc -l)
    counted=$("$2" stats "$1" 2>/dev/null | awk "/blob files/ {n += \$3} END {print n + 0}")
    [ "$on_disk" = "$counted" ] || { echo "on disk $on_disk, in the database $counted" >&2; exit 1; }
' _ "$db" "$TALUS"
mt_finish
