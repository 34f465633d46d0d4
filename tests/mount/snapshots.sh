#!/bin/bash
# snapshots.sh - `.snap/<seqno>` (DESIGN.md section 6): pin the current
# seqno (from the root xattr user.talus.seqno, and with `talus snapshot
# MOUNTPOINT`), change the live tree, and the snapshot must still be the tree
# as it was, contents and attributes: `diff -r` and `rsync -a .snap/N/
# backup/` against a copy made before the changes, also while a writer keeps
# writing. `.snap` is hidden from the root listing but `ls .snap` lists the
# pins; every change inside a snapshot fails with EROFS; pins survive a
# remount and show in `talus snapshot DB list`; `rmdir .snap/N` unpins.
. "$(dirname "$0")/lib.sh"
mt_init 150
have_python || mt_error "python3 is needed to read user.talus.seqno"

db=$W/db
mnt=$W/mnt

mt_mount "$db" "$mnt" || mt_finish

# The tree as it will be pinned.
t=$mnt/t
mkdir -p "$t/a" "$t/b/c" "$t/empty"
for i in $(seq 1 30); do mt_bytes "s$i" $((i * 997)) >"$t/a/f$i"; done
echo three >"$t/b/c/f3"
mt_bytes big 3000000 >"$t/b/big"
ln -s ../a/f1 "$t/b/link"
chmod 640 "$t/a/f2"
chmod 700 "$t/b/c"
xattr_set "$t/a/f1" user.tag before
find "$t" ! -type d -exec touch -h -d '2004-04-04 04:04:04.44444444' {} +
find "$t" -depth -type d -exec touch -d '2005-05-05 05:05:05.5' {} +
check "copy of the tree before the snapshot" cp -a "$t" "$W/before"

seq=$(mt_seqno "$mnt")
s=$mnt/.snap/$seq
check "the root xattr user.talus.seqno is a number" test -n "$seq"
check "mkdir .snap/<current seqno> pins a snapshot" mkdir "$mnt/.snap/$seq"
check "the snapshot directory exists" test -d "$mnt/.snap/$seq"
check_fail "pinning the same seqno again" "File exists" mkdir "$mnt/.snap/$seq"
echo bump >"$mnt/bump" # a new seqno, so the second pin is another snapshot
check "talus snapshot MOUNTPOINT pins and prints the path" "$TALUS" snapshot "$mnt"
keep snap.out
snap2=$(tr -d '\n' <"$W/snap.out")
seq2=${snap2##*/}
check "talus snapshot printed MOUNTPOINT/.snap/N" test "$snap2" = "$mnt/.snap/$seq2" -a -d "$snap2"
check "the second pin is a later seqno" test "$seq2" -gt "$seq"
check "a snapshot has only what was there at its seqno" test ! -e "$s/bump" -a -e "$snap2/bump"

# --- change the live tree ------------------------------------------------------
echo modified >"$t/a/f1"
rm "$t/a/f3"
echo new >"$t/a/new"
chmod 600 "$t/a/f2"
xattr_set "$t/a/f1" user.tag after
touch -d '2020-02-02 02:02:02' "$t/a/f4"
truncate -s 1000 "$t/b/big"
rmdir "$t/empty"
mv "$t/b" "$t/b-renamed"
mkdir "$t/later"

check "diff -r of the snapshot against the copy made before the changes" diff -r --no-dereference "$W/before" "$s/t"
mt_manifest "$W/before" >"$W/m.before"
mt_manifest "$s/t" >"$W/m.snap"
check "the snapshot kept modes, owners, sizes, mtimes and link targets" diff "$W/m.before" "$W/m.snap"
expect_eq "the snapshot kept the old xattr" "$(xattr_get "$s/t/a/f1" user.tag 2>&1)" before
expect_eq "the live tree has the new xattr" "$(xattr_get "$t/a/f1" user.tag 2>&1)" after
expect_eq "the live tree has the changes" "$(cat "$t/a/f1" "$t/a/new" 2>&1)" "modified
new"
check "the live tree lost what was removed" test ! -e "$t/a/f3" -a ! -e "$t/b" -a -d "$t/b-renamed"
check "talus snapshot's pin also has the old tree" diff -r --no-dereference "$W/before" "$snap2/t"
check "rsync -a .snap/N/ backup/" rsync -a "$s/" "$W/backup/"
check "the backup equals the tree as it was" diff -r --no-dereference "$W/before" "$W/backup/t"
check "rsync --checksum dry run: backup vs copy before" rsync -a -n -i --checksum "$W/before/" "$W/backup/t/"
expect_empty "the backup has the old mtimes, modes and owners" "$W/out"
check "second rsync -a from the snapshot transfers nothing" rsync -a -i "$s/" "$W/backup/"
expect_empty "the snapshot is stable between two reads" "$W/out"
expect_eq "same path, different inode in the live tree and the snapshot" \
    "$([ "$(stat -c %i "$t/a/f2")" != "$(stat -c %i "$s/t/a/f2")" ] && echo differ)" differ

# --- consistency while a writer writes -----------------------------------------
writer() {
    local i=0
    while [ ! -e "$W/stop" ] && [ $i -lt 2000 ]; do
        mt_bytes "w$i" 3000 >"$t/a/f$((i % 30 + 1))" 2>/dev/null
        echo "$i" >"$t/later/n$((i % 50))" 2>/dev/null
        i=$((i + 1))
    done
}
writer &
wpid=$!
check "rsync -a of the snapshot while a writer writes" rsync -a --delete "$s/" "$W/backup2/"
touch "$W/stop"
wait "$wpid"
check "the copy made during the writes equals the tree as it was" diff -r --no-dereference "$W/before" "$W/backup2/t"

# --- the snapshot directory ------------------------------------------------------
check "ls -a of the root does not show .snap" bash -c "! ls -a '$mnt' | grep -qx .snap"
check "find of the mount does not descend into .snap" bash -c "! find '$mnt' | grep -q '/\\.snap'"
check "ls .snap" ls "$mnt/.snap"
keep ls.out
check "ls .snap lists the pinned seqno" grep -qx "$seq" "$W/ls.out"
check "ls .snap lists the CLI's pin" grep -qx "$seq2" "$W/ls.out"
check "stat .snap" test -d "$mnt/.snap"
check_fail "a snapshot of a future seqno is refused" "" mkdir "$mnt/.snap/$((seq2 + 1000000))"
check_fail "mkdir .snap/not-a-number is refused" "" mkdir "$mnt/.snap/abc"
check_fail "a file in .snap is refused" "" touch "$mnt/.snap/file"

# --- read-only ---------------------------------------------------------------
RO="Read-only file system"
check_fail "create in a snapshot" "$RO" touch "$s/t/newfile"
check_fail "overwrite in a snapshot" "$RO" bash -c "echo x > '$s/t/a/f2'"
check_fail "append in a snapshot" "$RO" bash -c "echo x >> '$s/t/a/f2'"
check_fail "truncate in a snapshot" "$RO" truncate -s 0 "$s/t/a/f2"
check_fail "rm in a snapshot" "$RO" rm "$s/t/a/f2"
check_fail "mkdir in a snapshot" "$RO" mkdir "$s/t/newdir"
check_fail "rmdir in a snapshot" "$RO" rmdir "$s/t/empty"
check_fail "rename in a snapshot" "$RO" mv "$s/t/a/f2" "$s/t/a/f2b"
check_fail "chmod in a snapshot" "$RO" chmod 777 "$s/t/a/f2"
check_fail "chown in a snapshot" "$RO" chown 5:5 "$s/t/a/f2"
check_fail "touch -d in a snapshot" "$RO" touch -d 2001-01-01 "$s/t/a/f2"
check_fail "ln -s in a snapshot" "$RO" ln -s x "$s/t/ln"
check_fail "setxattr in a snapshot" "$RO" xattr_set "$s/t/a/f2" user.x y
check_fail "removexattr in a snapshot" "$RO" xattr_del "$s/t/a/f1" user.tag
check_fail "open for writing in a snapshot (python)" "$RO" mt_python -c 'import os,sys; os.open(sys.argv[1], os.O_WRONLY)' "$s/t/a/f2"
check "the snapshot is unchanged after the refused writes" diff -r --no-dereference "$W/before" "$s/t"

# --- remount ---------------------------------------------------------------------
mt_manifest "$t" >"$W/m.live"
mt_umount "$mnt"
check "talus snapshot DB list shows the pins" "$TALUS" snapshot "$db" list
keep list.out
check "the engine lists the seqno pinned with mkdir" grep -q "^$seq[[:space:]]" "$W/list.out"
mt_mount "$db" "$mnt" || mt_finish
check "ls .snap after a remount" ls "$mnt/.snap"
keep ls2.out
check "the pin survived the remount" grep -qx "$seq" "$W/ls2.out"
check "the snapshot's contents survived the remount" diff -r --no-dereference "$W/before" "$s/t"
mt_manifest "$s/t" >"$W/m.snap2"
check "the snapshot's attributes survived the remount" diff "$W/m.before" "$W/m.snap2"
mt_manifest "$t" >"$W/m.live2"
check "the live tree survived the remount" diff "$W/m.live" "$W/m.live2"

# --- unpin -----------------------------------------------------------------------
check "rmdir .snap/N unpins" rmdir "$s"
check "ls .snap no longer lists N" bash -c "! ls '$mnt/.snap' | grep -qx '$seq'"
check_fail "rmdir of a seqno that is not pinned" "" rmdir "$s"
check "talus snapshot MOUNTPOINT rm N" "$TALUS" snapshot "$mnt" rm "$seq2"
check "ls .snap is empty" test -z "$(ls "$mnt/.snap")"
mt_umount "$mnt"
check "talus snapshot DB list after unpinning" "$TALUS" snapshot "$db" list
expect_empty "no pins left" "$W/out"
mt_mount "$db" "$mnt" || mt_finish
check "no pins after a remount" test -z "$(ls "$mnt/.snap")"
mt_umount "$mnt"
mt_finish
