#!/bin/bash
# crash.sh - SIGKILL of talusfs (a process crash), then remove the dead
# mount and mount again:
#  - a file written with `dd conv=fsync`, and one written and fsync'd with
#    python, are whole;
#  - the safe-save pattern (write temp, fsync, rename, fsync the directory)
#    leaves the new file under its final name;
#  - a file that was being rewritten (open, not closed) at the kill is the
#    old version or the complete new one, never a mix;
#  - kills in the middle of parallel writers, three rounds: every file is
#    either absent or exactly what its writer wrote (writes are committed
#    atomically at close), and the database always mounts again.
. "$(dirname "$0")/lib.sh"
mt_init 150
have_python || mt_error "python3 is needed"

db=$W/db
mnt=$W/mnt

mt_mount "$db" "$mnt" || mt_finish

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

# A rewrite in progress when the process dies: 1 MiB written, never closed.
mt_python -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"N" * 1048576)
open(sys.argv[2], "w").close()
time.sleep(60)' "$mnt/atomic" "$W/rewriting" &
rpid=$!
for i in $(seq 1 100); do [ -e "$W/rewriting" ] && break; sleep 0.1; done
check "the rewriter is in the middle of its write" test -e "$W/rewriting"

check "SIGKILL talusfs" mt_kill9_keep "$mnt" 2>/dev/null || true
