#!/bin/bash
# stream.sh - streamed writes: files written at their end go straight to an
# engine blob file (talus_value_writer) with bounded memory, mounted with
# -o blob_size=64K so that anything from 64 KiB on streams.
#
# dd bs=1M, cp (of a sparse file too: holes at the end), rsync (twice, the
# second a delta transfer) and `cat >>` of large files must equal their
# sources. Programs (python3) run the same operations on a file in the
# mount and on a native file, compare every read and then the files:
# sequential writes with a seek back and an overwrite in the middle,
# ftruncate shrinking (below and above blob_size) and growing a file being
# streamed, reads through the same O_RDWR handle while writing, fsync in
# the middle, O_APPEND, holes, and alternating appends and rewrites. A file
# unlinked while being written disappears with no *.tmp left in the
# database; a reader (open before or during a slow rewrite) sees the old
# contents whole; the talusfs process's peak memory (VmHWM) stays far
# below the size of a 192 MiB file written with dd. Everything is checked
# again after a remount and with `talus get`.
. "$(dirname "$0")/lib.sh"
mt_init 240
have_python || mt_skip "python3 is needed"

db=$W/db
mnt=$W/mnt
src=$W/src
nat=$W/native
mkdir -p "$src" "$nat"
seed=${TALUS_TEST_SEED:-20261125}
say "seed $seed (TALUS_TEST_SEED)"
MIB=1048576

# gen NAME SIZE: seeded random bytes into $src/NAME.
gen() { mt_random_file "$src/$1" "$2" "$seed.$1"; }

# No temp file of a blob writer may be left in the database.
no_tmp() { mt_no_tmp "$db"; }

# talusfs's peak resident memory in KiB.
hwm_kib() {
    awk '/^VmHWM:/ { print $2 }' "/proc/${MT_PID[$mnt]}/status"
}

check "generate sources" gen d20 $((20 * MIB))
check "generate sources" gen big $((9 * MIB + 777))
check "generate sources" gen mid $((3 * MIB + 5))
check "generate sources" gen small 1000
check "generate sources" gen chunk $((8 * MIB))

mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish

# --- memory: a large dd streams ----------------------------------------------
hwm0=$(hwm_kib)
check "dd of 192 MiB (bs=1M, conv=fsync)" bash -c \
    "for i in \$(seq 24); do cat '$src/chunk'; done | dd of='$mnt/huge' bs=1M iflag=fullblock conv=fsync status=none"
hwm1=$(hwm_kib)
say "VmHWM before ${hwm0} KiB, after writing 192 MiB ${hwm1} KiB"
check "talusfs's peak memory grew by less than 64 MiB for a 192 MiB file" \
    test $((hwm1 - hwm0)) -lt 65536
check "the 192 MiB file's size" test "$(stat -c %s "$mnt/huge")" = $((192 * MIB))
check "the 192 MiB file's last chunk" cmp <(tail -c $((8 * MIB)) "$mnt/huge") "$src/chunk"
check "rm the 192 MiB file" rm "$mnt/huge"

# --- tools ---------------------------------------------------------------------
check "dd bs=1M of 20 MiB" dd if="$src/d20" of="$mnt/d20" bs=1M status=none
check "dd'd file equals its source" cmp "$src/d20" "$mnt/d20"
check "cp a large file" cp "$src/big" "$mnt/big"
check "cp'd file equals its source" cmp "$src/big" "$mnt/big"

sparse() {
    truncate -s $((6 * MIB)) "$src/sparse" &&
        dd if="$src/mid" of="$src/sparse" bs=4096 seek=300 count=40 conv=notrunc status=none &&
        dd if="$src/mid" of="$src/sparse" bs=4096 seek=900 count=3 conv=notrunc status=none
}
check "make a sparse source" sparse
check "cp --sparse=always a sparse file (holes at the end)" cp --sparse=always "$src/sparse" "$mnt/sparse"
check "the sparse copy equals its source" cmp "$src/sparse" "$mnt/sparse"

if command -v rsync >/dev/null; then
    mkdir -p "$W/rs"
    cp "$src/big" "$src/mid" "$src/small" "$src/d20" "$W/rs/"
    check "rsync -a of large files" rsync -a "$W/rs/" "$mnt/rs/"
    check "rsync'd tree equals its source" diff -r "$W/rs" "$mnt/rs"
    check "change the middle of a source" \
        dd if="$src/small" of="$W/rs/big" bs=1000 seek=4000 conv=notrunc status=none
    check "rsync again (a delta transfer into a temp file)" rsync -a -I --no-whole-file "$W/rs/" "$mnt/rs/"
    check "rsync'd tree equals its source again" diff -r "$W/rs" "$mnt/rs"
else
    say "rsync not found: rsync checks skipped"
fi

check "cp mid in" cp "$src/mid" "$mnt/app"
check "cat >> a large file" bash -c "cat '$src/big' >>'$mnt/app'"
check "cat >> again" bash -c "cat '$src/mid' >>'$mnt/app'"
check "the appended file equals the reference" cmp <(cat "$src/mid" "$src/big" "$src/mid") "$mnt/app"

# --- programs: the same operations on the mount and on a native file -----------
# ops SCENARIO: run it on $mnt/SCENARIO and $nat/SCENARIO; every read must
# agree; then the files must be equal.
ops() {
    mt_python - "$1" "$mnt/$1" "$nat/$1" "$seed" <<'EOF' || return 1
import os, random, sys
name, pm, pn, seed = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
r = random.Random("%s.%s" % (seed, name))
K, M = 65536, 1 << 20

class Both:
    """One file in the mount and one native, driven in lockstep."""
    def __init__(self, flags=os.O_RDWR | os.O_CREAT | os.O_TRUNC):
        self.fds = [os.open(p, flags, 0o644) for p in (pm, pn)]
    def write(self, data):
        for fd in self.fds:
            assert os.write(fd, data) == len(data)
    def pwrite(self, data, off):
        for fd in self.fds:
            assert os.pwrite(fd, data, off) == len(data)
    def seek(self, off, whence=os.SEEK_SET):
        got = [os.lseek(fd, off, whence) for fd in self.fds]
        assert got[0] == got[1], got
    def truncate(self, n):
        for fd in self.fds:
            os.ftruncate(fd, n)
    def fsync(self):
        for fd in self.fds:
            os.fsync(fd)
    def pread(self, n, off):
        a, b = (os.pread(fd, n, off) for fd in self.fds)
        if a != b:
            sys.exit("%s: pread(%d, %d): mount gave %d bytes, native %d (differ at %s)" % (
                name, n, off, len(a), len(b),
                next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), "end")))
    def size(self):
        return os.fstat(self.fds[1]).st_size
    def check_reads(self, count=6):
        size = self.size()
        self.pread(size + 10, 0)
        for _ in range(count):
            off = r.randrange(0, size + 2)
            self.pread(r.choice([1, 4096, K, 300000, M]), off)
        self.pread(10, size)
    def close(self):
        for fd in self.fds:
            os.close(fd)

def rand(n):
    return r.getrandbits(8 * n).to_bytes(n, "little") if n else b""

def appends(f, total):
    while total > 0:
        k = min(total, r.choice([1, 4096, 65535, K, 131072, M, 3 * M // 2]))
        f.write(rand(k))
        total -= k

if name == "seekback":
    f = Both(); appends(f, 3 * M)
    f.seek(M + 12345); f.write(rand(100000))   # overwrite in the middle
    f.seek(0, os.SEEK_END); appends(f, 3 * M)
    f.check_reads(); f.close()
elif name == "shrink":
    f = Both(); appends(f, 5 * M)
    f.truncate(2 * M + 3)                      # stays above blob_size
    f.check_reads()
    f.seek(0, os.SEEK_END); appends(f, M)
    f.truncate(1000)                           # below blob_size: back to memory
    f.check_reads()
    f.seek(0, os.SEEK_END); appends(f, 2 * M)
    f.truncate(8 * M)                          # grows: zeros at the end
    f.seek(0, os.SEEK_END); appends(f, 100000)
    f.check_reads(); f.close()
elif name == "readback":
    f = Both()
    for i in range(12):
        appends(f, r.choice([1000, 70000, M, 2 * M]))
        f.check_reads(4)                       # through the writing handle
    f.close()
elif name == "fsync":
    f = Both(); appends(f, 4 * M); f.fsync()
    f.check_reads()
    f.seek(0, os.SEEK_END); appends(f, 4 * M); f.fsync()
    f.seek(0, os.SEEK_END); appends(f, M)
    f.pwrite(rand(5000), 3 * M - 100)          # across the first fsync's end
    f.check_reads(); f.close()
elif name == "hole":
    f = Both(); appends(f, M)
    f.seek(3 * M + 17); f.write(rand(K))       # a hole at the end
    f.pwrite(rand(10), 9 * M)                  # and another
    f.check_reads(); f.close()
elif name == "append":
    f = Both(); appends(f, 200000); f.close()
    for _ in range(3):
        f = Both(os.O_WRONLY | os.O_APPEND)
        appends(f, 2 * M)
        f.close()
elif name == "alternate":
    f = Both()
    for i in range(60):                        # a header rewritten after each append
        appends(f, 256 * 1024)
        f.pwrite(i.to_bytes(4, "little") * 16, 0)
    f.check_reads(); f.close()
else:
    sys.exit("unknown scenario " + name)
EOF
    cmp "$mnt/$1" "$nat/$1"
}

for s in seekback shrink readback fsync hole append alternate; do
    check "program scenario $s: reads and the file equal a native file's" ops $s
done

# --- unlinked while being written ----------------------------------------------
unlinked() {
    mt_python - "$mnt/doomed" <<'EOF'
import os, sys
data = os.urandom(1 << 20)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
for _ in range(5):
    os.write(fd, data)
os.unlink(sys.argv[1])
for _ in range(5):
    os.write(fd, data)
if os.pread(fd, len(data), 7 << 20) != data:
    sys.exit("an unlinked file's handle does not read back what was written")
os.close(fd)
if os.path.exists(sys.argv[1]):
    sys.exit("the unlinked file came back")
EOF
}
check "a file unlinked while being written is written and read through its handle" unlinked
check "the unlinked file is gone" test ! -e "$mnt/doomed"
check "... and not listed" bash -c "! ls '$mnt' | grep -qx doomed"

# --- a reader of the old version during a slow rewrite ------------------------
check "cp mid to slow" cp "$src/mid" "$mnt/slow"
slow_rewrite() {
    rm -f "$W/half"
    mt_python - "$mnt/slow" "$src/big" "$W/half" <<'EOF' &
import os, sys, time
data = open(sys.argv[2], "rb").read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
step = 512 * 1024
for i in range(0, len(data), step):
    os.write(fd, data[i:i + step])
    if i == 8 * step:
        open(sys.argv[3], "w").close()
    time.sleep(0.05)
os.close(fd)
EOF
    local wpid=$! rc=0 i=0
    exec 3<"$mnt/slow"
    head -c 1000 <&3 >"$W/early" || rc=1
    while [ ! -e "$W/half" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
    [ -e "$W/half" ] || { echo "the writer did not get half way" >&2; rc=1; }
    cmp "$mnt/slow" "$src/mid" || { echo "a reader opened during the rewrite saw a mix" >&2; rc=1; }
    cat <&3 >>"$W/early" || rc=1
    exec 3<&-
    cmp "$W/early" "$src/mid" || { echo "a reader opened before the rewrite saw a mix" >&2; rc=1; }
    wait $wpid || { echo "the writer failed" >&2; rc=1; }
    return $rc
}
check "readers see the old contents whole while a large file is rewritten slowly" slow_rewrite

# A reader of an old version reads that version whole; the size the kernel
# learns for its reads must not stick to the inode: others see the new size.
check "an old version's reader, then stat by others" mt_python - "$mnt/vsize" <<'EOF'
import os, sys
f = sys.argv[1]
with open(f, "wb") as w:
    w.write(b"a" * 100000)
r = os.open(f, os.O_RDONLY)
with open(f, "wb") as w:  # rewritten, bigger, while r is open
    w.write(b"b" * 300000)
data = b""
while True:
    d = os.read(r, 4096)
    if not d:
        break
    data += d
os.close(r)
new = os.stat(f).st_size
if (len(data), set(data), new) != (100000, {ord("a")}, 300000):
    sys.exit("reader read %d bytes, stat says %d" % (len(data), new))
EOF

# stat never shows the size going back while appends are committed (fsync).
check "stat never sees a smaller size during append + fsync commits" mt_python - "$mnt/grow" <<'EOF'
import os, sys, threading
f = sys.argv[1]
os.close(os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
done, bad, floor = False, [], [0]
def statter():
    while not done:
        lo = floor[0]
        s = os.stat(f).st_size
        if s < lo:
            bad.append((s, lo))
t = threading.Thread(target=statter)
t.start()
fd = os.open(f, os.O_WRONLY | os.O_APPEND)
for i in range(40):
    os.write(fd, b"x" * 70000)
    floor[0] = (i + 1) * 70000
    os.fsync(fd)
done = True
t.join()
os.close(fd)
sys.exit("sizes going back: %r" % bad[:5] if bad else 0)
EOF
check "after the rewrite the file is the new one" cmp "$mnt/slow" "$src/big"

# --- remount, the CLI, and no temp files left -----------------------------------
mt_umount "$mnt" || mt_finish
check "no blob writer's *.tmp left in the database after unmount" no_tmp
mt_mount "$db" "$mnt" -o blob_size=64K || mt_finish
check "d20 after remount" cmp "$src/d20" "$mnt/d20"
check "big after remount" cmp "$src/big" "$mnt/big"
check "sparse after remount" cmp "$src/sparse" "$mnt/sparse"
for s in seekback shrink readback fsync hole append alternate; do
    check "$s after remount" cmp "$nat/$s" "$mnt/$s"
done
mt_umount "$mnt" || mt_finish
check "talus get app" "$TALUS" -t data get "$db" app && keep got.app
check "talus get app equals the reference" cmp <(cat "$src/mid" "$src/big" "$src/mid") "$W/got.app"
check "no *.tmp after the second unmount" no_tmp

mt_finish
