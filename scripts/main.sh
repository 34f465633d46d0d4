#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build,
# create a demo database and mount it as a directory with talusfs.
#   TALUS_DEMO_DB   database directory (default: ./demo-db)
#   TALUS_DEMO_MNT  mount point (default: ./demo-mnt)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
bash scripts/build.sh
talus="$top/build/mount/talus"
talusfs="$top/build/mount/talusfs"
db=${TALUS_DEMO_DB:-$top/demo-db}
mnt=${TALUS_DEMO_MNT:-$top/demo-mnt}

if mountpoint -q "$mnt" 2>/dev/null; then
    echo "== $mnt is already mounted; unmounting it first"
    fusermount3 -u "$mnt"
fi
if [ ! -d "$db" ]; then
    echo "== creating the demo database $db with the talus tool"
    {
        echo 'tree data'
        echo 'put README.txt Welcome\sto\sTalus:\sthis\sdirectory\sis\sa\sdatabase.\n'
        for i in $(seq 1 100); do printf 'put logs/2026/%04d.log entry\\s%d\\n\n' "$i" "$i"; done
    } | "$talus" batch "$db"
fi
mkdir -p "$mnt"
echo "== mounting $db on $mnt"
"$talusfs" "$db" "$mnt"
echo "== ls $mnt"; ls "$mnt"
echo "== cat $mnt/README.txt"; cat "$mnt/README.txt"
echo "== ls $mnt/logs/2026 | head -3"; ls "$mnt/logs/2026" | head -3
echo
echo "Mounted. Use it like any directory (cp, rsync, rm, mv, ...)."
echo "Snapshot:  $talus snapshot $mnt"
echo "Unmount:   fusermount3 -u $mnt"
