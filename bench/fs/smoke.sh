#!/bin/bash
# smoke.sh - `make check`'s run of the filesystem benchmark: fsbench.sh
# --quick (200 files, 16 MiB, contents verified) on all three targets, so the
# benchmark itself keeps working. Times are not judged; a failed or wrong
# phase is. Skips (77) without /dev/fuse or a built talusfs.
here=$(cd "$(dirname "$0")" && pwd)
TALUSFS=${TALUSFS:-$PWD/mount/talusfs}
[ -e /dev/fuse ] || { echo "fsbench smoke: SKIP: /dev/fuse is absent"; exit 77; }
[ -x "$TALUSFS" ] || { echo "fsbench smoke: SKIP: talusfs was not built ($TALUSFS)"; exit 77; }
export TALUSFS
# The watchdog: the quick run takes a few seconds; never hang make check.
exec timeout -k 10 120 bash "$here/fsbench.sh" --quick
