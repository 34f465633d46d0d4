#!/bin/bash
# copy.sh - a real tree through the mount with the tools people use: `cp -a`
# in and `diff -r` back; `rsync -a` in and out, where a --checksum dry run and
# a second `rsync -a` must find nothing to do (contents, modes, owners and
# mtimes survive); find, ls -lR, stat, du, df; and all of it again after a
# remount.
#
# The tree is /usr/include/linux (about 800 real headers) plus a synthetic
# part with the awkward cases: empty files and directories, a 1 MiB file,
# odd sizes, spaces, UTF-8, a 255-byte name, deep nesting, setuid/setgid
# modes, other owners, symlinks (relative, absolute, dangling, to a
# directory, long target) and nanosecond mtimes on files, links and dirs.
. "$(dirname "$0")/lib.sh"
mt_init 170

src=$W/src
db=$W/db
mnt=$W/mnt

build_tree() {
    local t=$1 s=$1/syn
    mkdir -p "$t"
    if [ -d /usr/include/linux ]; then
        cp -a /usr/include/linux "$t/include-linux" || return 1
    else
        mkdir -p "$t/generated"
        for i in $(seq 1 400); do
            mkdir -p "$t/generated/d$((i % 20))"
            mt_bytes "g$i" $((i * 37)) >"$t/generated/d$((i % 20))/f$i.h"
        done
    fi
    mkdir -p "$s/empty" "$s/nested/empty2" "$s/deep/a/b/c/d/e/f/g/h" "$s/private" "$s/shared"
    : >"$s/empty-file"
    mt_bytes big 1048576 >"$s/big.bin"
    mt_bytes odd 4097 >"$s/odd-size"
    echo spaces >"$s/name with spaces"
    echo utf8 >"$s/ünïcødé-名前"
    echo dash >"$s/-leading-dash"
    echo hidden >"$s/.hidden"
    echo long >"$s/$(printf 'n%.0s' $(seq 1 255))"
    echo leaf >"$s/deep/a/b/c/d/e/f/g/h/leaf"
    echo secret >"$s/private/key"
    printf '#!/bin/sh\necho run\n' >"$s/script.sh"
    echo setuid >"$s/setuid"
    echo ro >"$s/readonly"
    echo owned >"$s/owned"
    chmod 0600 "$s/private/key"
    chmod 0755 "$s/script.sh"
    chmod 4755 "$s/setuid"
    chmod 0444 "$s/readonly"
    chmod 0700 "$s/private"
    chmod 2775 "$s/shared"
    if [ "$(id -u)" = 0 ]; then chown 1234:5678 "$s/owned" "$s/shared"; fi
    ln -s big.bin "$s/rel-link"
    ln -s /etc/hostname "$s/abs-link"
    ln -s no/such/target "$s/dangling"
    ln -s nested "$s/dir-link"
    ln -s "$(printf 'x/%.0s' $(seq 1 400))end" "$s/long-link"
    # Timestamps last, directories deepest first, so nothing disturbs them.
    find "$s" ! -type d -exec touch -h -d '2001-02-03 04:05:06.123456789' {} +
    touch -h -d '1999-12-31 23:59:59.000000001' "$s/rel-link"
    find "$s" -depth -type d -exec touch -d '2010-06-07 08:09:10.987654321' {} +
    touch -d '2020-01-01 00:00:00.5' "$t"
}

build_tree "$src" || mt_error "could not build the source tree"
say "source tree: $(find "$src" | wc -l) entries, $(du -sh "$src" | cut -f1)"
mt_manifest "$src" >"$W/m.src"

mt_mount "$db" "$mnt" || mt_finish

# --- cp -a --------------------------------------------------------------
check "cp -a into the mount" cp -a "$src" "$mnt/cpa"
check "diff -r of the cp -a copy" diff -r --no-dereference "$src" "$mnt/cpa"
mt_manifest "$mnt/cpa" >"$W/m.cpa"
check "cp -a kept types, modes, owners, sizes, mtimes (ns) and link targets" \
    diff "$W/m.src" "$W/m.cpa"

# --- rsync in ------------------------------------------------------------
check "rsync -a into the mount" rsync -a "$src/" "$mnt/rs/"
check "rsync --checksum dry run after rsync -a" rsync -a --checksum -n -i "$src/" "$mnt/rs/"
expect_empty "rsync --checksum -n -i finds no difference" "$W/out"
check "second rsync -a" rsync -a -i "$src/" "$mnt/rs/"
expect_empty "second rsync -a -i transfers nothing (mtimes, modes preserved)" "$W/out"
mt_manifest "$mnt/rs" >"$W/m.rs"
check "rsync -a kept all metadata" diff "$W/m.src" "$W/m.rs"

# --- rsync out -------------------------------------------------------------
check "rsync -a out of the mount" rsync -a "$mnt/rs/" "$W/out-tree/"
check "diff -r of the tree copied out" diff -r --no-dereference "$src" "$W/out-tree"
check "rsync --checksum dry run src -> copied out" rsync -a --checksum -n -i "$src/" "$W/out-tree/"
expect_empty "tree copied out of the mount is identical (contents and metadata)" "$W/out"

# --- find, ls, stat, du, df --------------------------------------------------
(cd "$src" && find . | LC_ALL=C sort) >"$W/find.src"
check "find in the mount" find "$mnt/rs"
(cd "$mnt/rs" && find . | LC_ALL=C sort) >"$W/find.mnt"
check "find lists the same entries" diff "$W/find.src" "$W/find.mnt"
check "find -type f count" test "$(find "$mnt/rs" -type f | wc -l)" = "$(find "$src" -type f | wc -l)"
check "find -type l count" test "$(find "$mnt/rs" -type l | wc -l)" = "$(find "$src" -type l | wc -l)"
check "find -newer" test "$(find "$mnt/rs/syn" -newermt 2005-01-01 | wc -l)" = "$(find "$src/syn" -newermt 2005-01-01 | wc -l)"
check "ls -lR of the mount" ls -lR "$mnt/rs"
keep ls.out
check "ls -lR output is not empty" test -s "$W/ls.out"
(cd "$src" && LC_ALL=C ls -R1a) >"$W/ls.src"
(cd "$mnt/rs" && LC_ALL=C ls -R1a) >"$W/ls.mnt"
check "ls -R1a lists the same names in the same order" diff "$W/ls.src" "$W/ls.mnt"
LC_ALL=C ls -lR --time-style=+%s.%N "$src" | awk '$1 ~ /^[-l]/ {$2=""; print}' | sed "s|$src||g" >"$W/lsl.src"
LC_ALL=C ls -lR --time-style=+%s.%N "$mnt/rs" | awk '$1 ~ /^[-l]/ {$2=""; print}' | sed "s|$mnt/rs||g" >"$W/lsl.mnt"
check "ls -lR shows the same modes, owners, sizes, times for files and links" diff "$W/lsl.src" "$W/lsl.mnt"
check "stat of the mount root" stat "$mnt"
for f in syn/big.bin syn/setuid syn/owned syn/shared syn/rel-link syn/empty; do
    check "stat $f" env TZ=UTC0 stat -c '%s %a %u %g %y %F %N' "$mnt/rs/$f"
    expect_eq "stat $f: size, mode, owner, mtime, type, link" "$(sed "s|$mnt/rs||" "$W/out")" \
        "$(TZ=UTC0 stat -c '%s %a %u %g %y %F %N' "$src/$f" | sed "s|$src||")"
done
check "stat -L through a symlink" stat -L -c %s "$mnt/rs/syn/rel-link"
expect_eq "stat -L size via symlink" "$(cat "$W/out")" 1048576
check "st_blocks is not 0 for files with data (cp/tar would treat them as sparse)" \
    bash -c "find '$mnt/rs' -type f -size +0c -printf '%b %p\n' | awk '\$1 == 0 {print; bad=1} END {exit bad}'"
check "st_blocks covers a 1 MiB file" test "$(stat -c %b "$mnt/rs/syn/big.bin")" -ge 1024
check "du -s of the mount" du -s "$mnt/rs"
check "du -s is not 0" test "$(du -sk "$mnt/rs" | cut -f1)" -gt 0
check "du --apparent-size of files matches" test \
    "$(find "$mnt/rs" -type f -printf '%s\n' | awk '{s += $1} END {print s}')" = \
    "$(find "$src" -type f -printf '%s\n' | awk '{s += $1} END {print s}')"
check "df of the mount" df "$mnt"
keep df.out
check "df names the mount point" grep -qF "$mnt" "$W/df.out"
check "df -i of the mount" df -i "$mnt"
check "stat -f of the mount" stat -f -c '%b %a %c %l' "$mnt"
check "statfs reports a name-length limit >= 255" test "$(stat -f -c %l "$mnt")" -ge 255
check "mount type is fuse.talusfs" test "$(findmnt -n -o FSTYPE "$mnt")" = fuse.talusfs
check "run a script stored in the mount" "$mnt/rs/syn/script.sh"
expect_eq "script output" "$(cat "$W/out")" run
check "copy a binary into the mount" cp /bin/true "$mnt/true"
check "execute a binary from the mount (mmap)" "$mnt/true"

# --- persistence -----------------------------------------------------------
mt_umount "$mnt"
mt_mount "$db" "$mnt" || mt_finish
check "diff -r of the cp -a copy after remount" diff -r --no-dereference "$src" "$mnt/cpa"
mt_manifest "$mnt/cpa" >"$W/m.cpa2"
check "metadata after remount" diff "$W/m.src" "$W/m.cpa2"
check "rsync -a after remount" rsync -a -i "$src/" "$mnt/rs/"
expect_empty "rsync -a after remount transfers nothing" "$W/out"
check "rm -rf of the copies" rm -rf "$mnt/cpa" "$mnt/rs"
check "the mount is empty again" test -z "$(ls -A "$mnt" | grep -v '^true$')"
mt_umount "$mnt"
mt_finish
