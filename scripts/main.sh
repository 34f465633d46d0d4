#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build,
# then run a short demo with the talus tool on a database in ./demo-db.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/install-deps.sh
bash scripts/build.sh
talus="$top/build/mount/talus"
db=${TALUS_DEMO_DB:-$top/demo-db}
echo "== demo database in $db"
"$talus" put "$db" greeting "hello from talus"
for i in $(seq 1 1000); do printf 'put logs/2026/%04d entry-%d\n' "$i" "$i"; done >"$top/build/demo.batch"
if "$talus" --help 2>&1 | grep -q 'batch'; then
    "$talus" batch "$db" <"$top/build/demo.batch"
else
    for i in $(seq 1 50); do "$talus" put "$db" "logs/2026/$(printf %04d "$i")" "entry-$i"; done
fi
echo "== get greeting"; "$talus" get "$db" greeting; echo
echo "== scan logs/2026/000 (first keys)"; "$talus" scan "$db" logs/2026/000 | head -5
echo "== stats"; "$talus" stats "$db"
