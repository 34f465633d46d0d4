#!/bin/bash
# files.sh - file contents and attributes through the mount.
#
# Contents: the same sequence of appends, writes at offsets (dd
# conv=notrunc seek=...), writes past the end (holes), truncates up and down,
# overwrites and read-modify-write through one descriptor is applied to a
# native directory and to the mount, and the results must be byte-identical;
# holes read as zeros; O_EXCL; parallel writers; two descriptors on one file.
# Attributes: chmod, chown, touch -d with nanoseconds, ctime; symlinks; user
# xattrs (through python's os.*xattr, so the attr package is not needed);
# hard links, FIFOs and device nodes are refused with EPERM. Everything is
# checked again after a remount.
. "$(dirname "$0")/lib.sh"
mt_init 170

db=$W/db
mnt=$W/mnt
ref=$W/ref
mkdir -p "$ref"

root=0
[ "$(id -u)" = 0 ] && root=1

# The content workload; $1 is the directory to run it in.
file_ops() {
    local d=$1/f
    mkdir -p "$d" || return 1
    printf 'line1\n' >"$d/append"
    for i in $(seq 2 40); do printf 'line%d\n' "$i" >>"$d/append"; done

    mt_bytes base 10000 >"$d/offsets"
    printf HELLO | dd of="$d/offsets" bs=1 seek=5000 conv=notrunc status=none
    printf TAIL | dd of="$d/offsets" bs=1 seek=9998 conv=notrunc status=none
    printf FAR | dd of="$d/offsets" bs=1 seek=20000 conv=notrunc status=none
    mt_bytes blk 4096 | dd of="$d/offsets" bs=4096 seek=10 conv=notrunc status=none
    mt_bytes first 7 | dd of="$d/offsets" bs=1 seek=0 conv=notrunc status=none

    mt_bytes large 8388608 >"$d/large"
    mt_bytes mid 100000 | dd of="$d/large" bs=1000 seek=3000 conv=notrunc status=none
    mt_bytes end 5000 | dd of="$d/large" bs=1000 seek=8388 conv=notrunc status=none
    # dd without notrunc truncates at the seek point: shrinks the file.
    dd if=/dev/null of="$d/large" bs=1 seek=8000000 status=none

    mt_bytes t 5000 >"$d/trunc"
    truncate -s 100000 "$d/trunc"
    truncate -s 3000 "$d/trunc"
    truncate -s 6000 "$d/trunc"
    mt_bytes t2 10 >>"$d/trunc"

    truncate -s 1048576 "$d/hole"
    printf x | dd of="$d/hole" bs=1 seek=524288 conv=notrunc status=none

    mt_bytes z 3000 >"$d/to-zero"
    truncate -s 0 "$d/to-zero"

    echo long-long-long-long >"$d/shorter"
    echo s >"$d/shorter"

    : >"$d/empty"

    mt_bytes rw 20000 >"$d/rw"
    mt_python - "$d/rw" <<'EOF' || return 1
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
os.lseek(fd, 100, os.SEEK_SET)
os.write(fd, b"A" * 50)
os.lseek(fd, 90, os.SEEK_SET)
got = os.read(fd, 70)
os.lseek(fd, 30000, os.SEEK_SET)
os.write(fd, got[::-1])
os.ftruncate(fd, 25000)
os.pwrite(fd, b"pwrite", 24998)
os.fsync(fd)
os.close(fd)
EOF
    # Two descriptors, two regions of one file, both kept open.
    mt_bytes two 8192 >"$d/two-fds"
    mt_python - "$d/two-fds" <<'EOF' || return 1
import os, sys
a = os.open(sys.argv[1], os.O_WRONLY)
b = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(a, b"a" * 100, 0)
os.pwrite(b, b"b" * 100, 4000)
os.close(a)
os.close(b)
EOF
    # Two O_APPEND writers (two processes appending to one log).
    : >"$d/log"
    mt_python - "$d/log" <<'EOF' || return 1
import os, sys
a = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
b = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for i in range(20):
    os.write(a, b"a%02d\n" % i)
    os.write(b, b"b%02d\n" % i)
os.close(a)
os.close(b)
EOF
}

check "content workload on the native reference" file_ops "$ref"
mt_mount "$db" "$mnt" || mt_finish
check "content workload on the mount" file_ops "$mnt"
for f in append offsets large trunc hole to-zero shorter empty rw two-fds log; do
    check "contents of f/$f equal the reference" cmp "$ref/f/$f" "$mnt/f/$f"
    expect_eq "size of f/$f" "$(stat -c %s "$mnt/f/$f" 2>&1)" "$(stat -c %s "$ref/f/$f")"
done
check "hole reads as zeros (first half)" cmp -n 524288 "$mnt/f/hole" /dev/zero
check "hole reads as zeros (after the byte)" cmp -n 524287 -i 524289:0 "$mnt/f/hole" /dev/zero
check "gap left by offsets beyond EOF reads as zeros" cmp -n 9997 -i 10003:0 "$mnt/f/offsets" /dev/zero
check "truncate down then up exposes zeros, not old data" cmp -n 3000 -i 3000:0 "$mnt/f/trunc" /dev/zero
check "reading in odd-sized blocks" bash -c "dd if='$mnt/f/large' bs=4099 status=none | cmp - '$ref/f/large'"
check "reading from an offset" bash -c "tail -c 1234567 '$mnt/f/large' | cmp - <(tail -c 1234567 '$ref/f/large')"

# --- parallel writers ---------------------------------------------------------
par_write() {
    local d=$1 w pids=() rc=0
    mkdir -p "$d/par"
    for w in 1 2 3 4; do
        (for i in $(seq 1 40); do mt_bytes "p$w.$i" $((i * 301)) >"$d/par/w$w-$i" || exit 1; done) &
        pids+=($!)
    done
    # Wait for the writers only (a bare `wait` would wait for the watchdog).
    for w in "${pids[@]}"; do wait "$w" || rc=1; done
    return $rc
}
par_write "$ref"
check "4 parallel writers, 160 files" par_write "$mnt"
check "parallel writers' files are all correct" diff -r "$ref/par" "$mnt/par"

# --- O_EXCL ----------------------------------------------------------------
check "O_CREAT|O_EXCL creates a new file" mt_python -c \
    'import os,sys; os.close(os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))' "$mnt/excl"
check_fail "O_CREAT|O_EXCL on an existing file fails with EEXIST" "File exists" mt_python -c \
    'import os,sys; os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)' "$mnt/excl"
check_fail "O_CREAT|O_EXCL on an existing directory fails" "File exists" mt_python -c \
    'import os,sys; os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)' "$mnt/f"
expect_eq "O_EXCL file mode" "$(stat -c %a "$mnt/excl" 2>&1)" 600
check_fail "noclobber > onto an existing file" "cannot overwrite existing file" bash -c "set -C; echo x > '$mnt/f/append'"
check_fail "open a missing file" "No such file or directory" cat "$mnt/no-such-file"
check_fail "open a directory for writing" "Is a directory" bash -c "echo x > '$mnt/f'"
check_fail "a file is not a directory" "Not a directory" ls "$mnt/f/append/x"

# --- attributes ---------------------------------------------------------------
echo attr >"$mnt/attr"
check "chmod 640" chmod 640 "$mnt/attr"
expect_eq "mode after chmod 640" "$(stat -c %a "$mnt/attr")" 640
check "chmod 4755" chmod 4755 "$mnt/attr"
expect_eq "mode after chmod 4755" "$(stat -c %a "$mnt/attr")" 4755
check "chmod 1777 on a directory" chmod 1777 "$mnt/f"
expect_eq "directory mode after chmod 1777" "$(stat -c %a "$mnt/f")" 1777
check "chmod 755 on a directory" chmod 755 "$mnt/f"
if [ $root = 1 ]; then
    check "chown 1234:5678" chown 1234:5678 "$mnt/attr"
    expect_eq "owner after chown" "$(stat -c %u:%g "$mnt/attr")" 1234:5678
    check "chgrp 42" chgrp 42 "$mnt/attr"
    expect_eq "owner after chgrp" "$(stat -c %u:%g "$mnt/attr")" 1234:42
    check "chown of a directory" chown 99:98 "$mnt/f"
    expect_eq "directory owner" "$(stat -c %u:%g "$mnt/f")" 99:98
fi
check "touch -d with nanoseconds" touch -d '2001-02-03 04:05:06.123456789' "$mnt/attr"
expect_eq "mtime with nanoseconds" "$(TZ=UTC0 stat -c %y "$mnt/attr")" "2001-02-03 04:05:06.123456789 +0000"
check "touch -m -d before 1970" touch -m -d '1969-07-20 20:17:40.5' "$mnt/f/empty"
expect_eq "mtime before the epoch" "$(TZ=UTC0 stat -c %y "$mnt/f/empty")" "1969-07-20 20:17:40.500000000 +0000"
check "touch -d of a directory" touch -d '2011-11-11 11:11:11.111111111' "$mnt/f"
expect_eq "directory mtime" "$(TZ=UTC0 stat -c %y "$mnt/f")" "2011-11-11 11:11:11.111111111 +0000"
check "touch -a -d (atime)" touch -a -d '2002-02-02 02:02:02.2' "$mnt/f/append"
expect_eq "atime set by touch -a" "$(TZ=UTC0 stat -c %x "$mnt/f/append")" "2002-02-02 02:02:02.200000000 +0000"
before=$(date +%s)
check "touch creates an empty file" touch "$mnt/touched"
expect_eq "touched file size" "$(stat -c %s "$mnt/touched")" 0
check "touch (now) sets the mtime to now" test "$(stat -c %Y "$mnt/touched")" -ge $((before - 2))
sleep 1.1
echo more >>"$mnt/touched"
check "a write moves the mtime forward" test "$(stat -c %Y "$mnt/touched")" -ge $((before + 1))
ct=$(stat -c %Z "$mnt/attr")
sleep 1.1
chmod 600 "$mnt/attr"
check "chmod updates the ctime" test "$(stat -c %Z "$mnt/attr")" -gt "$ct"
check "ctime is not before the mtime of a fresh file" test "$(stat -c %Z "$mnt/touched")" -ge "$(stat -c %Y "$mnt/touched")"
check "truncate keeps the mode" bash -c "chmod 751 '$mnt/f/shorter' && truncate -s 1 '$mnt/f/shorter' && test \$(stat -c %a '$mnt/f/shorter') = 751"
expect_eq "st_nlink of a file" "$(stat -c %h "$mnt/attr")" 1
expect_eq "inode number is stable across stats" "$(stat -c %i "$mnt/attr")" "$(stat -c %i "$mnt/attr")"
check "inode numbers of different files differ" test "$(stat -c %i "$mnt/attr")" != "$(stat -c %i "$mnt/touched")"

# --- symlinks -------------------------------------------------------------
check "ln -s to a file" ln -s f/append "$mnt/link"
expect_eq "readlink" "$(readlink "$mnt/link")" f/append
check "cat through a symlink" cmp "$mnt/link" "$ref/f/append"
expect_eq "stat of a symlink: type and size" "$(stat -c '%F %s' "$mnt/link")" "symbolic link 8"
check "ln -s to a directory" ln -s f "$mnt/dirlink"
check "list through a directory symlink" test -f "$mnt/dirlink/append"
check "ln -s dangling" ln -s /no/such/thing "$mnt/dangling"
check_fail "cat of a dangling symlink" "No such file or directory" cat "$mnt/dangling"
expect_eq "readlink of a dangling symlink" "$(readlink "$mnt/dangling")" /no/such/thing
long=$(printf 'seg/%.0s' $(seq 1 1000))end
check "ln -s with a 4003-byte target" ln -s "$long" "$mnt/f/longlink"
expect_eq "readlink of the long target" "$(readlink "$mnt/f/longlink")" "$long"
check "ln -s relative target in a subdirectory" ln -s ../attr "$mnt/f/up"
check "read ../ through a symlink" test "$(cat "$mnt/f/up")" = attr
check "ln -sfn replaces a symlink" ln -sfn f/trunc "$mnt/link"
expect_eq "readlink after ln -sfn" "$(readlink "$mnt/link")" f/trunc
check "touch -h on a symlink" touch -h -d '2003-03-03 03:03:03.333333333' "$mnt/link"
expect_eq "symlink mtime" "$(TZ=UTC0 stat -c %y "$mnt/link")" "2003-03-03 03:03:03.333333333 +0000"
if [ $root = 1 ]; then
    check "chown -h on a symlink" chown -h 7:8 "$mnt/link"
    expect_eq "symlink owner" "$(stat -c %u:%g "$mnt/link")" 7:8
fi
check "rm of a symlink keeps its target" bash -c "rm '$mnt/dirlink' && test -d '$mnt/f'"
check_fail "ln -s onto an existing name" "File exists" ln -s x "$mnt/attr"

# --- xattrs ---------------------------------------------------------------
if have_python; then
    check "setxattr user.color" xattr_set "$mnt/attr" user.color blue
    check "getxattr user.color" xattr_get "$mnt/attr" user.color
    expect_eq "getxattr value" "$(cat "$W/out")" blue
    check "setxattr replaces a value" xattr_set "$mnt/attr" user.color green-and-longer
    expect_eq "replaced value" "$(xattr_get "$mnt/attr" user.color 2>&1)" green-and-longer
    check "setxattr on a directory" xattr_set "$mnt/f" user.dir yes
    expect_eq "directory xattr" "$(xattr_get "$mnt/f" user.dir 2>&1)" yes
    check "xattrs: binary value, empty value, large value, many names, create/replace flags" mt_python - "$mnt/attr" <<'EOF'
import errno, os, sys
p = sys.argv[1]
blob = bytes(range(256)) * 3
os.setxattr(p, "user.bin", blob)
assert os.getxattr(p, "user.bin") == blob, "binary value differs"
os.setxattr(p, "user.empty", b"")
assert os.getxattr(p, "user.empty") == b"", "empty value differs"
big = b"v" * 4000
os.setxattr(p, "user.big", big)
assert os.getxattr(p, "user.big") == big, "4000-byte value differs"
for i in range(20):
    os.setxattr(p, "user.n%02d" % i, b"%d" % i)
names = set(os.listxattr(p))
want = {"user.color", "user.bin", "user.empty", "user.big"} | {"user.n%02d" % i for i in range(20)}
assert want <= names, "listxattr lacks %s" % sorted(want - names)
try:
    os.setxattr(p, "user.color", b"x", os.XATTR_CREATE)
    raise AssertionError("XATTR_CREATE on an existing name succeeded")
except OSError as e:
    assert e.errno == errno.EEXIST, "XATTR_CREATE: %s" % e
try:
    os.setxattr(p, "user.absent", b"x", os.XATTR_REPLACE)
    raise AssertionError("XATTR_REPLACE on a missing name succeeded")
except OSError as e:
    assert e.errno == errno.ENODATA, "XATTR_REPLACE: %s" % e
try:
    os.getxattr(p, "user.absent")
    raise AssertionError("getxattr of a missing name succeeded")
except OSError as e:
    assert e.errno == errno.ENODATA, "getxattr missing: %s" % e
for i in range(20):
    os.removexattr(p, "user.n%02d" % i)
left = [n for n in os.listxattr(p) if n.startswith("user.n")]
assert not left, "removexattr left %s" % left
EOF
    check "removexattr" xattr_del "$mnt/attr" user.empty
    check_fail "getxattr after removexattr" "No data available" xattr_get "$mnt/attr" user.empty
    check_fail "removexattr of a missing name" "No data available" xattr_del "$mnt/attr" user.never
    check "cp -a copies xattrs out of the mount" cp -a "$mnt/attr" "$W/attr-copy"
    expect_eq "copied xattr" "$(xattr_get "$W/attr-copy" user.color 2>&1)" green-and-longer
    xattr_set "$W/attr-copy" user.back in
    check "cp -a copies xattrs into the mount" cp -a "$W/attr-copy" "$mnt/attr-back"
    expect_eq "xattr copied in" "$(xattr_get "$mnt/attr-back" user.back 2>&1)" in
    check "the write with an xattr does not disturb contents" cmp "$mnt/attr-back" "$W/attr-copy"
else
    say "NOTE: python3 missing: xattr checks skipped"
fi

# --- refused node types ------------------------------------------------------
check_fail "hard link is refused with EPERM" "Operation not permitted" ln "$mnt/attr" "$mnt/hardlink"
check "no file left behind by the refused link" test ! -e "$mnt/hardlink"
check_fail "mkfifo is refused" "" mkfifo "$mnt/fifo"
check "no fifo left behind" test ! -e "$mnt/fifo"
if [ $root = 1 ]; then
    check_fail "mknod c is refused with EPERM" "Operation not permitted" mknod "$mnt/null" c 1 3
    check "no device node left behind" test ! -e "$mnt/null"
fi
check_fail "unix socket is refused" "" mt_python -c \
    'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$mnt/sock"

# --- sync and persistence ------------------------------------------------------
check "sync -f on the mount" sync -f "$mnt/attr"
check "fsync of a file" mt_python -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$mnt/f/large"
check "fsync of a directory" mt_python -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$mnt/f"
mt_manifest "$mnt" | grep -v '^\./f/par' >"$W/m.before"
mt_umount "$mnt"
mt_mount "$db" "$mnt" || mt_finish
mt_manifest "$mnt" | grep -v '^\./f/par' >"$W/m.after"
check "attributes, sizes and link targets survive a remount" diff "$W/m.before" "$W/m.after"
check "contents survive a remount" diff -r "$ref/f" "$mnt/f" -x longlink -x up -x shorter
check "parallel writers' files survive a remount" diff -r "$ref/par" "$mnt/par"
if have_python; then
    expect_eq "xattr survives a remount" "$(xattr_get "$mnt/attr" user.color 2>&1)" green-and-longer
    check "binary xattr survives a remount" mt_python -c \
        'import os,sys; assert os.getxattr(sys.argv[1], "user.bin") == bytes(range(256)) * 3' "$mnt/attr"
fi
expect_eq "symlink survives a remount" "$(readlink "$mnt/f/longlink")" "$long"
mt_umount "$mnt"
mt_finish
