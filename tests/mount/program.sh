#!/bin/bash
# program.sh - talusfs as a program: --help and --version; daemon mode
# returns with the mount up and creates the database if needed; a second
# mount of the same database (and `talus` on a mounted one) fails with a
# clear message and a non-zero status, leaving nothing mounted; a corrupt
# database, a database path that is a file, a missing mount point and a bad
# option fail cleanly without leaving a mount or a process; SIGTERM (daemon)
# and SIGINT (-f) unmount cleanly and the data persists; `umount` flushes;
# -o ro refuses writes; -o durability=sync is accepted.
. "$(dirname "$0")/lib.sh"
mt_init 150

db=$W/db
mnt=$W/mnt
mkdir -p "$db"

# Run talusfs in the foreground with a timeout; for mounts that must fail.
# Its stderr also goes to talusfs.log (where sanitizer reports are looked for).
tfs_fg() {
    local rc
    echo "== $(mt_quote "$TALUSFS" -f "$@")" >>"$W/talusfs.log"
    timeout -k 5 30 "$TALUSFS" -f "$@" 2>"$W/fg.err"
    rc=$?
    cat "$W/fg.err" >>"$W/talusfs.log"
    cat "$W/fg.err" >&2
    return $rc
}
# The same for the commands that do not mount (--help, ...).
tfs_cmd() {
    local rc
    echo "== $(mt_quote "$TALUSFS" "$@")" >>"$W/talusfs.log"
    "$TALUSFS" "$@" 2>"$W/fg.err"
    rc=$?
    cat "$W/fg.err" >>"$W/talusfs.log"
    cat "$W/fg.err" >&2
    return $rc
}
no_talusfs_for() {
    [ -z "$(mt_pids_of_mount "$1")" ]
}

# --- help, version, usage ---------------------------------------------------------
check "talusfs --help exits 0" tfs_cmd --help
cat "$W/out" "$W/err" >"$W/help"
check "--help shows the usage with DBDIR and MOUNTPOINT" grep -q 'DBDIR.*MOUNTPOINT\|DB.*MOUNTPOINT' "$W/help"
check "--help documents -o ro" grep -q '\bro\b' "$W/help"
check "--help documents durability" grep -q 'durability' "$W/help"
check "talusfs --version exits 0" tfs_cmd --version
cat "$W/out" "$W/err" >"$W/version"
check "--version names talusfs and a version number" grep -q 'talusfs.*[0-9]' "$W/version"
check_fail "no arguments is a usage error" "" tfs_cmd
expect_eq "no arguments: exit status 2" "$MT_RC" 2
cp "$W/err" "$W/usage.err"
check "the usage error says something on stderr" test -s "$W/usage.err"
check_fail "one argument is a usage error" "" tfs_cmd "$db"

# --- daemon mode, database creation -------------------------------------------------
if mt_mount_daemon "$db/new" "$mnt"; then
    ok "daemon mode returned with the mount up"
    check "talusfs created the missing database directory" test -d "$db/new"
    check "write a file" bash -c "echo -n persisted > '$mnt/file'"
    check "the mount is a directory owned by talusfs" test "$(findmnt -n -o FSTYPE "$mnt")" = fuse.talusfs
    mkdir -p "$W/mnt2"
    check_fail "a second mount of the same database fails" "" tfs_fg "$db/new" "$W/mnt2"
    cat "$W/err" "$W/out" >"$W/second"
    check "the second mount says why (lock / already mounted / in use)" grep -qi 'lock\|already\|in use\|busy\|another' "$W/second"
    check "the second mount point was not mounted" mt_not_mounted "$W/mnt2"
    check "no second talusfs process left" no_talusfs_for "$W/mnt2"
    check "the first mount still works" test "$(cat "$mnt/file")" = persisted
    check_fail "talus put refuses a database that is mounted" "" "$TALUS" -t data put "$db/new" file x
    cp "$W/err" "$W/put.err"
    check "talus says why" grep -qi 'lock\|in use\|busy\|another\|mounted' "$W/put.err"
    check "the refused put changed nothing" test "$(cat "$mnt/file")" = persisted

    pid=${MT_PID[$mnt]}
    check "SIGTERM to the daemon" kill -TERM "$pid"
    if mt_wait_exit "$pid" 30; then
        ok "talusfs exited after SIGTERM"
    else
        bad "talusfs did not exit within 30 s of SIGTERM"
        kill -9 "$pid"
        mt_force_unmount "$mnt"
    fi
    unset "MT_PID[$mnt]"
    check "SIGTERM unmounted the mount point" mt_not_mounted "$mnt"
    check "the data persists after SIGTERM" "$TALUS" -t data get "$db/new" file
    expect_eq "value after SIGTERM" "$(cat "$W/out")" persisted
fi

# --- SIGINT in the foreground -----------------------------------------------------------
if mt_mount "$db/new" "$mnt"; then
    check "write a file" bash -c "echo -n via-sigint > '$mnt/file2'"
    pid=${MT_PID[$mnt]}
    kill -INT "$pid"
    if mt_wait_exit "$pid" 30; then
        expect_eq "talusfs -f exits 0 after SIGINT" "$MT_EXIT" 0
    else
        bad "talusfs -f did not exit within 30 s of SIGINT"
        kill -9 "$pid"
        mt_force_unmount "$mnt"
    fi
    unset "MT_PID[$mnt]"
    check "SIGINT unmounted the mount point" mt_not_mounted "$mnt"
    expect_eq "the data persists after SIGINT" "$("$TALUS" -t data get "$db/new" file2 2>&1)" via-sigint
fi

# --- umount (not fusermount) flushes ------------------------------------------------------
if mt_mount "$db/new" "$mnt"; then
    mt_bytes u 300000 >"$W/u.ref"
    cp "$W/u.ref" "$mnt/by-umount"
    pid=${MT_PID[$mnt]}
    check "umount of the mount point" umount "$mnt"
    mt_wait_exit "$pid" 30 || { bad "talusfs did not exit after umount"; kill -9 "$pid"; }
    unset "MT_PID[$mnt]"
    expect_eq "talusfs exits 0 after umount" "${MT_EXIT:-}" 0
    check "a file written just before umount is in the database" bash -c "'$TALUS' -t data get '$db/new' by-umount | cmp - '$W/u.ref'"
fi

# --- read-only mount ------------------------------------------------------------------
if mt_mount "$db/new" "$mnt" -o ro; then
    expect_eq "-o ro: files read" "$(cat "$mnt/file" 2>&1)" persisted
    check_fail "-o ro: create is refused" "Read-only file system" touch "$mnt/new"
    check_fail "-o ro: write is refused" "Read-only file system" bash -c "echo x > '$mnt/file'"
    check_fail "-o ro: mkdir is refused" "Read-only file system" mkdir "$mnt/d"
    check_fail "-o ro: rm is refused" "Read-only file system" rm "$mnt/file"
    check_fail "-o ro: chmod is refused" "Read-only file system" chmod 600 "$mnt/file"
    check_fail "-o ro: pinning a snapshot is refused" "" mkdir "$mnt/.snap/1"
    mt_umount "$mnt"
fi

# --- durability option -----------------------------------------------------------------
for d in sync buffered none; do
    if grep -q "$d" "$W/help"; then
        if mt_mount "$db/new" "$mnt" -o "durability=$d"; then
            check "-o durability=$d: write" bash -c "echo -n $d > '$mnt/dur-$d'"
            mt_umount "$mnt"
            expect_eq "-o durability=$d: the write is in the database" "$("$TALUS" -t data get "$db/new" "dur-$d" 2>&1)" "$d"
        fi
    fi
done
check_fail "-o durability=bogus is refused" "" tfs_fg -o durability=bogus "$db/new" "$mnt"
check "a refused option leaves nothing mounted" mt_not_mounted "$mnt"

# --- clean failures -----------------------------------------------------------------------
check "make a database for corruption" "$TALUS" -t data put "$db/bad" k v
check "its DBMETA exists" test -f "$db/bad/DBMETA"
printf 'this is not a talus database at all, just garbage bytes\n' >"$db/bad/DBMETA"
check_fail "a database with a garbage DBMETA fails to mount" "" tfs_fg "$db/bad" "$mnt"
expect_eq "a database that cannot be opened: exit status 1" "$MT_RC" 1
cat "$W/err" "$W/out" >"$W/corrupt"
check "the failure says what is wrong" test -s "$W/corrupt"
say "corrupt DBMETA message: $(head -c 300 "$W/corrupt" | tr '\n' ' ')"
check "nothing mounted after the corrupt database" mt_not_mounted "$mnt"
check "no talusfs left after the corrupt database" no_talusfs_for "$mnt"
check_fail "a daemon-mode mount of the corrupt database fails too" "" tfs_cmd "$db/bad" "$mnt"
check "nothing mounted after the failed daemon mount" mt_not_mounted "$mnt"
sleep 0.5
check "no talusfs left after the failed daemon mount" no_talusfs_for "$mnt"

check "make a database with a truncated table" "$TALUS" -t data put "$db/trunc" k v
: >"$db/trunc/DBMETA"
check_fail "a database with an empty DBMETA fails to mount" "" tfs_fg "$db/trunc" "$mnt"
check "nothing mounted after the empty DBMETA" mt_not_mounted "$mnt"

echo "a file" >"$W/notadir"
check_fail "a database path that is a regular file fails" "" tfs_fg "$W/notadir" "$mnt"
check "nothing mounted after the file-as-database" mt_not_mounted "$mnt"
check_fail "a missing mount point fails" "" tfs_fg "$db/new" "$W/no/such/dir"
check_fail "a mount point that is a file fails" "" tfs_fg "$db/new" "$W/notadir"

# The good database still mounts after all of this.
if mt_mount "$db/new" "$mnt"; then
    expect_eq "the database is intact" "$(cat "$mnt/file" "$mnt/file2" 2>&1)" persistedvia-sigint
    mt_umount "$mnt"
fi
mt_finish
