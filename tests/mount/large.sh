#!/bin/bash
# large.sh - large files and ranged reads, mounted with -o blob_size=64K so
# that every file of 64 KiB or more is an engine blob-file value.
#
# Files of 0, 1, 64K-1, 64K, 64K+1 bytes and a few MiB of seeded random
# data are copied in and compared; dd reads at many offsets and lengths
# (bs=1, 4K, 1M, past EOF too), tail -c and random preads from several
# threads must equal the same reads of the source. A reader that holds a
# large file open keeps its version whole across an overwrite and an rm; a
# snapshot keeps the old contents; truncate up and down; rm. Everything is
# checked again after a remount (with -o kernel_cache, the page-cache path)
# and, unmounted, with `talus get`. Bad blob_size values are usage errors.
. "$(dirname "$0")/lib.sh"
mt_init 170
have_python || mt_skip "python3 is needed"

db=$W/db
mnt=$W/mnt
src=$W/src
mkdir -p "$src"
seed=${TALUS_TEST_SEED:-20261125}
say "seed $seed (TALUS_TEST_SEED)"

# gen NAME SIZE: seeded random bytes into $src/NAME.
gen() { mt_random_file "$src/$1" "$2" "$seed.$1"; }

K=65536
MIB=1048576
names="z0 one below at above big huge"
check "generate sources" gen z0 0
check "generate sources" gen one 1
check "generate sources" gen below $((K - 1))
check "generate sources" gen at $K
check "generate sources" gen above $((K + 1))
check "generate sources" gen big $((3 * MIB + 4321))
check "generate sources" gen huge $((6 * MIB))
check "generate sources" gen other $((2 * MIB + 17))

check_fail "-o blob_size=12Q is a usage error" "blob_size must be a number of bytes" \
    "$TALUSFS" -f -o blob_size=12Q "$db" "$mnt"
expect_eq "usage error exit status" "$MT_RC" 2
check "--help documents blob_size" bash -c "'$TALUSFS' --help | grep -q 'blob_size=BYTES'"

mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish

for f in $names; do
    check "cp $f in" cp "$src/$f" "$mnt/$f"
done

# dd_same FILE BS SKIP COUNT: the same dd on the mount and on the source.
dd_same() {
    cmp <(dd if="$mnt/$1" bs="$2" skip="$3" count="$4" status=none) \
        <(dd if="$src/$1" bs="$2" skip="$3" count="$4" status=none)
}

# pread_same FILE N: N seeded random preads (some past EOF) from 4 threads
# on one descriptor, each compared with the source.
pread_same() {
    mt_python - "$mnt/$1" "$src/$1" "$2" "$seed.$1.pread" <<'EOF'
import os, random, sys, threading
path, ref, n, s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = open(ref, "rb").read()
fd = os.open(path, os.O_RDONLY)
bad = []
def worker(i):
    r = random.Random("%s.%d" % (s, i))
    for _ in range(n):
        off = r.randrange(0, len(data) + 70000)
        ln = r.choice([1, 7, 4096, 65535, 65536, 65537, 131072, 300000, r.randrange(1, 1 << 20)])
        got = os.pread(fd, ln, off)
        if got != data[off:off + ln]:
            bad.append((off, ln, len(got)))
ts = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in ts: t.start()
for t in ts: t.join()
os.close(fd)
if bad:
    sys.exit("mismatched preads (offset, length, got): %r" % bad[:5])
EOF
}

verify_all() {
    local f size
    for f in "$@"; do
        check "$f equals its source" cmp "$src/$f" "$mnt/$f"
        size=$(stat -c %s "$src/$f")
        expect_eq "stat size of $f" "$(stat -c %s "$mnt/$f" 2>&1)" "$size"
        expect_eq "ls -l size of $f" "$(ls -l "$mnt" | awk -v f="$f" '$NF == f { print $5 }')" "$size"
    done
}

verify_all $names

for f in above big; do
    for bs in 1 4096 $MIB; do
        case $bs in
        1) ranges="0:1 1:100 65535:3 65536:1 65537:50 1000000:64 3149000:500 5000000:10" ;;
        4096) ranges="0:1 1:17 15:2 16:1 17:40 768:1 769:5 2000:3" ;;
        *) ranges="0:1 0:10 1:1 2:1 3:2 4:1 9:1" ;;
        esac
        for r in $ranges; do
            check "dd $f bs=$bs skip=${r%:*} count=${r#*:}" dd_same "$f" "$bs" "${r%:*}" "${r#*:}"
        done
    done
done
for f in one below at above big huge; do
    for n in 1 100 65536 65537 1234567; do
        check "tail -c $n $f" cmp <(tail -c "$n" "$mnt/$f") <(tail -c "$n" "$src/$f")
    done
done
check "random preads of big from 4 threads" pread_same big 100
check "random preads of above from 4 threads" pread_same above 50

# --- readers keep their version --------------------------------------------
reader_keeps() {
    local rc=0
    exec 3<"$mnt/big"
    head -c 1000 <&3 >"$W/head" || rc=1
    cp "$src/other" "$mnt/big" || rc=1
    cat <&3 >"$W/rest" || rc=1
    exec 3<&-
    [ $rc = 0 ] && cat "$W/head" "$W/rest" | cmp - "$src/big"
}
check "a reader holding big open reads the old contents whole after an overwrite" reader_keeps
check "a new open sees the overwrite" cmp "$mnt/big" "$src/other"
check "restore big" cp "$src/big" "$mnt/big"

reader_after_rm() {
    local rc=0
    cp "$src/huge" "$mnt/gone" || return 1
    exec 3<"$mnt/gone"
    rm "$mnt/gone" || rc=1
    cat <&3 >"$W/gone" || rc=1
    exec 3<&-
    [ $rc = 0 ] && cmp "$W/gone" "$src/huge"
}
check "a reader of a removed large file reads it whole" reader_after_rm
check "the removed file is gone" test ! -e "$mnt/gone"

# --- snapshots -------------------------------------------------------------
seq=$(mt_seqno "$mnt")
check "pin a snapshot" mkdir "$mnt/.snap/$seq"
check "overwrite huge after the snapshot" cp "$src/other" "$mnt/huge"
check "the snapshot's huge is the old one" cmp "$mnt/.snap/$seq/huge" "$src/huge"
check "the snapshot's huge by dd at an offset" \
    cmp <(dd if="$mnt/.snap/$seq/huge" bs=4096 skip=1000 count=3 status=none) \
    <(dd if="$src/huge" bs=4096 skip=1000 count=3 status=none)
check "the live huge is the new one" cmp "$mnt/huge" "$src/other"
check "the snapshot's size" test "$(stat -c %s "$mnt/.snap/$seq/huge")" = $((6 * MIB))
check "restore huge" cp "$src/huge" "$mnt/huge"

# --- truncate ----------------------------------------------------------------
check "copy trunc" cp "$src/big" "$mnt/trunc"
check "reference trunc" cp "$src/big" "$src/trunc"
for s in $((4 * MIB)) 70000 $((K + 1)) $K 1000 $((3 * MIB)) 0 $((K * 2)); do
    check "truncate -s $s (mount)" truncate -s "$s" "$mnt/trunc"
    check "truncate -s $s (reference)" truncate -s "$s" "$src/trunc"
    check "trunc after truncate -s $s" cmp "$mnt/trunc" "$src/trunc"
done
names="$names trunc"

# --- mv: the blob is linked, not copied --------------------------------------------
check "copy moving" cp "$src/big" "$mnt/moving"
check "reference moving" cp "$src/big" "$src/moving"
check "mv a large file into a new directory" bash -c "mkdir -p '$mnt/moved' && mv '$mnt/moving' '$mnt/moved/big'"
check "the moved file is whole" cmp "$src/big" "$mnt/moved/big"
check "the moved file's old name is gone" test ! -e "$mnt/moving"
# Until compaction drops the old reference, the old and the new blob file
# are two names of one inode: the rename wrote no copy of the bytes.
check "the rename hard-linked the blob" test -n "$(find "$db/trees" -name '*.blob' -links 2 -print -quit)"
check "mv it back" mv "$mnt/moved/big" "$mnt/moving"
check "moved back whole" cmp "$src/big" "$mnt/moving"
names="$names moving"

# --- rm ------------------------------------------------------------------------
check "copy doomed" cp "$src/big" "$mnt/doomed"
check "rm a large file" rm "$mnt/doomed"
check "rm'd file is not listed" bash -c "! ls '$mnt' | grep -qx doomed"

# --- remount -------------------------------------------------------------------
mt_umount "$mnt" || mt_finish
mt_mount "$db" "$mnt" -o blob_size=64K,kernel_cache || mt_finish
verify_all $names
check "random preads of big after remount (page cache)" pread_same big 50
check "a large file written after the remount" cp "$src/other" "$mnt/later"
check "it reads back" cmp "$mnt/later" "$src/other"
mt_umount "$mnt" || mt_finish

# --- the CLI reads what the mount wrote ---------------------------------------
for f in big huge above at below one trunc later; do
    ref=$src/$f
    [ "$f" = later ] && ref=$src/other
    check "talus get $f" "$TALUS" -t data get "$db" "$f" && keep "got.$f"
    check "talus get $f equals the file" cmp "$W/got.$f" "$ref"
done

mt_finish
