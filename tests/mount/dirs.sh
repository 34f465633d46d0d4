#!/bin/bash
# dirs.sh - directories through the mount: mkdir/rmdir, rm -r, mv of files
# and of directories with their contents (within and across directories),
# rename over an existing file, mv -n, the sibling-order trap (a, a.txt, a-b,
# a/x), many entries, deep nesting, open files that are renamed or unlinked;
# the conventional errors with their messages (Directory not empty, File
# exists, Not a directory, Is a directory, File name too long, ...). The
# same workload runs on a native directory and the two trees must have the
# same shape, also after a remount (empty directories included).
. "$(dirname "$0")/lib.sh"
mt_init 170

db=$W/db
mnt=$W/mnt
ref=$W/ref
mkdir -p "$ref"

# Path, type, mode, size of non-directories, link target: what must be equal
# between the reference and the mount (directory mtimes may legitimately
# differ after renames).
shape() {
    (cd "$1" && find . -mindepth 1 \( -type d -printf '%p %y %m\n' \) -o \
        \( ! -type d -printf '%p %y %m %s %l\n' \) | LC_ALL=C sort)
}

dir_ops() {
    local D=$1 i
    mkdir -p "$D/a/b/c" "$D/empty" "$D/e1/e2/e3" || return 1
    echo 1 >"$D/a/f1"
    echo 2 >"$D/a/b/f2"
    echo 3 >"$D/a/b/c/f3"
    mkdir "$D/gone" && rmdir "$D/gone" || return 1
    mkdir -p "$D/rmme/x/y" && touch "$D/rmme/x/y/z" "$D/rmme/x/w" && rm -r "$D/rmme" || return 1
    echo m >"$D/a/move-me"
    mv "$D/a/move-me" "$D/a/moved" || return 1
    mv "$D/a/moved" "$D/a/b/c/moved-across" || return 1
    mkdir -p "$D/src/sub/subsub"
    for i in $(seq 1 20); do echo "$i" >"$D/src/sub/file$i"; done
    echo deep >"$D/src/sub/subsub/deep"
    ln -s subsub/deep "$D/src/sub/link"
    mkdir "$D/src/sub/emptydir"
    mv "$D/src" "$D/dst" || return 1
    mv "$D/dst" "$D/a/b/" || return 1
    echo old >"$D/over"
    echo new-and-longer >"$D/over-src"
    mv "$D/over-src" "$D/over" || return 1
    echo keep >"$D/keep"
    echo other >"$D/other"
    mv -n "$D/other" "$D/keep" || true
    mkdir "$D/target-empty"
    mkdir -p "$D/srcdir/inner"
    echo s >"$D/srcdir/inner/s"
    mv -T "$D/srcdir" "$D/target-empty" || return 1
    mkdir "$D/many"
    for i in $(seq 1 500); do : >"$D/many/e$i"; done
    mkdir "$D/many2"
    mv "$D/many/"e1?? "$D/many2/" || return 1
    touch "$D/name with spaces" "$D/ünïcødé" "$D/-dash" "$D/.dot"
    mkdir -p "$D/sort/a"
    echo x >"$D/sort/a/x"
    for n in a.txt a-b a0 a_ 'a b' a+; do echo "$n" >"$D/sort/$n"; done
    mv "$D/sort/a" "$D/sort/b" || return 1
    mkdir "$D/sort/a"
    echo y >"$D/sort/a/y"
    mkdir -p "$D/deep/$(printf 'level/%.0s' $(seq 1 40))"
    echo bottom >"$D/deep/$(printf 'level/%.0s' $(seq 1 40))bottom"
    mv "$D/deep" "$D/deep-renamed" || return 1
    mkdir -p "$D/x1/y1"
    echo z >"$D/x1/y1/z"
    mv "$D/x1/y1" "$D/y1-up" || return 1
    rmdir "$D/x1" || return 1
    touch "$D/$(printf 'L%.0s' $(seq 1 255))"
    mkdir "$D/$(printf 'D%.0s' $(seq 1 255))"
    mt_python - "$D" <<'EOF' || return 1
import os, sys
d = sys.argv[1]
# A file open for writing while its directory is renamed.
os.makedirs(d + "/op/dir")
fd = os.open(d + "/op/dir/f", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"before-")
os.rename(d + "/op/dir", d + "/op/dir2")
os.write(fd, b"after")
os.close(fd)
# A file open for writing while it is renamed itself.
fd = os.open(d + "/op/g", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"one-")
os.rename(d + "/op/g", d + "/op/g2")
os.write(fd, b"two")
os.close(fd)
# rename(x, x) is a no-op.
os.rename(d + "/op/g2", d + "/op/g2")
# os.replace of a directory onto an empty directory.
os.makedirs(d + "/op/r1/in")
os.makedirs(d + "/op/r2")
os.replace(d + "/op/r1", d + "/op/r2")
EOF
}

check "directory workload on the native reference" dir_ops "$ref"
mt_mount "$db" "$mnt" || mt_finish
check "directory workload on the mount" dir_ops "$mnt"
shape "$ref" >"$W/shape.ref"
shape "$mnt" >"$W/shape.mnt"
check "the mount has the reference's shape" diff "$W/shape.ref" "$W/shape.mnt"
check "diff -r against the reference" diff -r --no-dereference "$ref" "$mnt"

expect_eq "rmdir removed the directory" "$(ls -d "$mnt/gone" 2>&1 | grep -c 'No such file')" 1
expect_eq "rm -r removed the tree" "$(ls -d "$mnt/rmme" 2>&1 | grep -c 'No such file')" 1
expect_eq "file moved across directories" "$(cat "$mnt/a/b/c/moved-across" 2>&1)" m
expect_eq "old name of a moved file is gone" "$(ls "$mnt/a/moved" 2>&1 | grep -c 'No such file')" 1
expect_eq "moved directory kept its files" "$(ls "$mnt/a/b/dst/sub" 2>/dev/null | wc -l)" 23
expect_eq "moved directory kept its nested file" "$(cat "$mnt/a/b/dst/sub/subsub/deep" 2>&1)" deep
expect_eq "moved directory kept its symlink" "$(cat "$mnt/a/b/dst/sub/link" 2>&1)" deep
check "moved directory kept its empty subdirectory" test -d "$mnt/a/b/dst/sub/emptydir"
check "the old directory name is gone" test ! -e "$mnt/src"
check "no trace of the intermediate name" test ! -e "$mnt/dst"
expect_eq "rename over an existing file replaces it" "$(cat "$mnt/over" 2>&1)" new-and-longer
expect_eq "mv -n did not overwrite" "$(cat "$mnt/keep" 2>&1)" keep
expect_eq "mv -n left the source" "$(cat "$mnt/other" 2>&1)" other
expect_eq "directory renamed over an empty directory" "$(cat "$mnt/target-empty/inner/s" 2>&1)" s
expect_eq "400 of 500 entries left after moving 100" "$(ls "$mnt/many" | wc -l)" 400
expect_eq "100 entries moved" "$(ls "$mnt/many2" | wc -l)" 100
expect_eq "ls -a shows . and .." "$(ls -a "$mnt/empty" | tr '\n' ' ')" ". .. "
expect_eq "sibling order: a (dir), a.txt, a-b... all listed" \
    "$(LC_ALL=C ls "$mnt/sort" | tr '\n' ' ')" "$(LC_ALL=C ls "$ref/sort" | tr '\n' ' ')"
check "a renamed directory's prefix siblings stay" test -f "$mnt/sort/a.txt" -a -f "$mnt/sort/a-b" -a -f "$mnt/sort/b/x"
expect_eq "file written across a directory rename" "$(cat "$mnt/op/dir2/f" 2>&1)" before-after
expect_eq "file written across its own rename" "$(cat "$mnt/op/g2" 2>&1)" one-two
check "renamed-away path of an open file is gone" test ! -e "$mnt/op/dir" -a ! -e "$mnt/op/g"

# --- errors --------------------------------------------------------------
check_fail "rmdir of a non-empty directory" "Directory not empty" rmdir "$mnt/a"
check_fail "rmdir of a directory holding only an empty directory" "Directory not empty" rmdir "$mnt/e1"
check_fail "rmdir of a file" "Not a directory" rmdir "$mnt/keep"
check_fail "rmdir of a missing directory" "No such file or directory" rmdir "$mnt/nope"
check_fail "mkdir of an existing directory" "File exists" mkdir "$mnt/a"
check_fail "mkdir over an existing file" "File exists" mkdir "$mnt/keep"
check_fail "mkdir in a missing directory" "No such file or directory" mkdir "$mnt/nope/x"
check_fail "create in a missing directory" "No such file or directory" touch "$mnt/nope/x"
check_fail "rm of a directory without -r" "Is a directory" rm "$mnt/empty"
check_fail "rename a directory over a non-empty directory" "Directory not empty" \
    mt_python -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$mnt/empty" "$mnt/a"
check_fail "rename a directory into itself" "Invalid argument" \
    mt_python -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$mnt/a" "$mnt/a/b/inside"
check_fail "rename a file over a directory" "Is a directory" \
    mt_python -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$mnt/keep" "$mnt/empty"
check_fail "rename a directory over a file" "Not a directory" \
    mt_python -c 'import os,sys; os.rename(sys.argv[1], sys.argv[2])' "$mnt/empty" "$mnt/keep"
check_fail "rename of a missing name" "No such file or directory" mv "$mnt/nope" "$mnt/nope2"
check_fail "mv into a missing directory" "No such file or directory" mv "$mnt/keep" "$mnt/nope/keep"
check_fail "a 256-byte name is too long" "File name too long" touch "$mnt/$(printf 'N%.0s' $(seq 1 256))"
check_fail "a 256-byte directory name is too long" "File name too long" mkdir "$mnt/$(printf 'N%.0s' $(seq 1 256))"
check_fail "rmdir ." "Invalid argument" rmdir "$mnt/a/."
check "the failed operations changed nothing" bash -c "diff <(cat '$W/shape.mnt') <(cd '$mnt' && find . -mindepth 1 \( -type d -printf '%p %y %m\n' \) -o \( ! -type d -printf '%p %y %m %s %l\n' \) | LC_ALL=C sort)"

# --- open files and unlink ------------------------------------------------------
check "an unlinked open file stays readable and writable until closed" mt_python - "$mnt" <<'EOF'
import os, sys
p = sys.argv[1] + "/unlinked"
fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, b"still here")
os.fsync(fd)
os.unlink(p)
assert not os.path.exists(p), "name still there after unlink"
os.write(fd, b"!")
got = os.pread(fd, 100, 0)
assert got == b"still here!", "read after unlink: %r" % got
os.close(fd)
assert not os.path.exists(p), "unlinked file came back after close"
EOF
check "rm -r of a big tree" rm -r "$mnt/many" "$mnt/deep-renamed"
check "rm -r left nothing" test ! -e "$mnt/many" -a ! -e "$mnt/deep-renamed"
rm -r "$ref/many" "$ref/deep-renamed"
rm -f "$ref/unlinked"

# --- persistence -----------------------------------------------------------
shape "$mnt" >"$W/shape.mnt2"
mt_umount "$mnt"
mt_mount "$db" "$mnt" || mt_finish
shape "$mnt" >"$W/shape.mnt3"
check "the tree (empty directories too) survives a remount" diff "$W/shape.mnt2" "$W/shape.mnt3"
check "the tree still equals the reference after a remount" diff -r --no-dereference "$ref" "$mnt"
check "rmdir of an empty directory after a remount" rmdir "$mnt/empty" "$mnt/e1/e2/e3"
check "rm -rf of everything" bash -c "rm -rf '$mnt'/* '$mnt'/.dot"
expect_eq "the mount is empty" "$(ls -A "$mnt")" ""
mt_umount "$mnt"
mt_mount "$db" "$mnt" || mt_finish
expect_eq "the mount is still empty after a remount" "$(ls -A "$mnt")" ""
mt_umount "$mnt"
mt_finish
