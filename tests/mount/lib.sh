# lib.sh - shared helpers of the talusfs mount tests (sourced, not run).
#
# Every test script sources this file, calls `mt_init SECONDS`, mounts with
# `mt_mount DB MNT [OPTION]...`, checks with `check`/`check_fail`/`expect_eq`
# and ends with `mt_finish`. The helpers guarantee that a test never hangs and
# never leaves a mount behind:
#  - a watchdog kills the test's talusfs processes, lazily unmounts and ends
#    the script with status 99 (automake's "hard error") after SECONDS;
#  - every external command a check runs is wrapped in `timeout`;
#  - an EXIT trap unmounts everything the script mounted, waits for (and at
#    worst SIGKILLs) the talusfs processes it started, and removes the work
#    directory only once nothing is mounted below it.
#
# Environment: TALUSFS and TALUS name the programs (the Makefile sets both;
# the defaults are the build directory's, which is where `make check` runs
# tests from). KEEP=1 keeps the work directory for inspection. VERBOSE=1
# echoes every check.
#
# Exit status follows automake: 0 pass, 1 fail, 77 skip, 99 hard error.

set -u

MT_NAME=$(basename "$0" .sh)
MT_SRCDIR=$(cd "$(dirname "$0")" && pwd)
TALUSFS=${TALUSFS:-$PWD/mount/talusfs}
TALUS=${TALUS:-$PWD/mount/talus}
CMD_TIMEOUT=${CMD_TIMEOUT:-60}
MT_PASS=0
MT_FAIL=0
MT_WATCHDOG=
W=
declare -a MT_MOUNTS=()
declare -A MT_PID=()
declare -A MT_WAITER=()

say() { echo "$MT_NAME: $*"; }

mt_skip() {
    say "SKIP: $*"
    exit 77
}

mt_error() {
    say "ERROR: $*" >&2
    exit 99
}

# The command line as a user would type it, for failure messages.
mt_quote() {
    local s
    s=$(printf '%q ' "$@")
    printf '%s' "${s% }"
}

ok() {
    MT_PASS=$((MT_PASS + 1))
    if [ "${VERBOSE:-0}" = 1 ]; then say "ok: $*"; fi
    return 0
}

bad() {
    MT_FAIL=$((MT_FAIL + 1))
    say "FAIL: $*" >&2
    mt_check_alive
    return 0
}

# After a failure: if a talusfs we started has died unexpectedly, say so
# with its last output and stop (every later check would fail because of it).
# The end of talusfs's output; a sanitizer report is shown from its start.
mt_show_log() {
    local first
    first=$(grep -n -m 1 -E 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$W/talusfs.log" | cut -d: -f1)
    if [ -n "$first" ]; then
        tail -n +"$first" "$W/talusfs.log" | grep -v '^ *0x\|^  *[A-Z][a-z ]*redzone\|Shadow byte\|=>0x' | head -n 45
    else
        tail -n 15 "$W/talusfs.log"
    fi | sed 's/^/    | /'
}

mt_check_alive() {
    local m p
    for m in "${!MT_PID[@]}"; do
        p=${MT_PID[$m]}
        if ! kill -0 "$p" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = Z ]; then
            wait "${MT_WAITER[$p]:-$p}" 2>/dev/null
            say "ERROR: talusfs (pid $p) serving $m died (exit status $?) during the check above; stopping. Its last output:" >&2
            mt_show_log >&2
            unset "MT_PID[$m]"
            say "$MT_PASS passed, $MT_FAIL failed (stopped: talusfs died)"
            exit 1
        fi
    done
}

# mt_run CMD...: run with a timeout (shell functions run directly: the
# watchdog covers them); stdout to $W/out, stderr to $W/err; sets MT_RC.
mt_run() {
    if declare -F "$1" >/dev/null; then
        "$@" >"$W/out" 2>"$W/err"
    else
        timeout -k 5 "$CMD_TIMEOUT" "$@" >"$W/out" 2>"$W/err"
    fi
    MT_RC=$?
    return $MT_RC
}

# keep NAME: save the last command's stdout as $W/NAME (the next check
# overwrites $W/out).
keep() {
    cp "$W/out" "$W/$1"
}

# What a failed command said: its stderr, else the start of its stdout.
mt_errtext() {
    if [ -s "$W/err" ]; then
        head -c 400 "$W/err" | tr '\n' ' '
    else
        printf 'stdout: '
        head -c 400 "$W/out" | tr '\n' ' '
    fi
}

# check DESCRIPTION CMD...: the command must succeed.
check() {
    local what=$1
    shift
    if mt_run "$@"; then
        ok "$what"
    else
        bad "$what: \`$(mt_quote "$@")\` exited $MT_RC${MT_RC:+ }$( [ "$MT_RC" = 124 ] && echo '(timeout) ')stderr: $(mt_errtext)"
        return 1
    fi
}

# check_fail DESCRIPTION MESSAGE CMD...: the command must fail, and its
# stderr must contain MESSAGE (empty MESSAGE: any failure will do).
check_fail() {
    local what=$1 msg=$2
    shift 2
    if mt_run "$@"; then
        bad "$what: \`$(mt_quote "$@")\` succeeded, expected failure${msg:+ with \"$msg\"}"
        return 1
    elif [ "$MT_RC" = 124 ] || [ "$MT_RC" = 137 ]; then
        bad "$what: \`$(mt_quote "$@")\` timed out"
        return 1
    elif [ -n "$msg" ] && ! grep -qF -- "$msg" "$W/err"; then
        bad "$what: \`$(mt_quote "$@")\` failed (exit $MT_RC) but stderr lacks \"$msg\": $(mt_errtext)"
        return 1
    fi
    ok "$what"
}

# expect_eq DESCRIPTION GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then
        ok "$1"
    else
        bad "$1: got [$(printf '%s' "$2" | head -c 600)] expected [$(printf '%s' "$3" | head -c 600)]"
        return 1
    fi
}

# expect_empty DESCRIPTION FILE: FILE must be empty (shows its head if not).
expect_empty() {
    if [ ! -s "$2" ]; then
        ok "$1"
    else
        bad "$1: unexpected output: $(head -n 15 "$2" | tr '\n' '|' | head -c 900)"
        return 1
    fi
}

# Is MNT a mount point in this namespace? Unlike `mountpoint`, this also
# answers yes for a dead FUSE mount (whose stat fails with ENOTCONN).
mt_is_mounted() {
    local m
    m=$(readlink -m "$1")
    awk -v m="$m" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

mt_not_mounted() {
    ! mt_is_mounted "$1"
}

# The pids of talusfs processes whose command line names MNT (daemon mode,
# where the process is not our child). Matches exact arguments only.
mt_pids_of_mount() {
    local m p arg first found
    m=$(readlink -m "$1")
    for p in /proc/[0-9]*; do
        [ -r "$p/cmdline" ] || continue
        first=
        found=0
        while IFS= read -r -d '' arg; do
            [ -z "$first" ] && first=$arg
            if [ "$arg" = "$1" ] || [ "$arg" = "$m" ]; then found=1; fi
        done <"$p/cmdline" 2>/dev/null
        case $(basename -- "${first:-x}") in
        *talusfs*) [ $found = 1 ] && echo "${p#/proc/}" ;;
        esac
    done
}

mt_remember_pid() {
    MT_PID[$1]=$2
    echo "$2" >>"$W/pids"
}

# Ask politely, then force: unmount MNT. Returns 0 once it is gone.
mt_force_unmount() {
    local m=$1 i
    mt_is_mounted "$m" || return 0
    for i in 1 2 3 4 5 6 7 8 9 10; do
        timeout -k 2 10 fusermount3 -u "$m" 2>/dev/null || timeout -k 2 10 umount "$m" 2>/dev/null
        mt_is_mounted "$m" || return 0
        sleep 0.3
    done
    timeout -k 2 10 fusermount3 -uz "$m" 2>/dev/null || timeout -k 2 10 umount -l "$m" 2>/dev/null
    ! mt_is_mounted "$m"
}

# Wait up to $2 seconds (default 30) for process $1 to end; its exit status
# (for our own children) is in MT_EXIT. Returns 1 on timeout.
mt_wait_exit() {
    local pid=$1 limit=${2:-30} i=0 waiter
    MT_EXIT=
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie child of ours counts as ended: wait reaps it below.
        if [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then break; fi
        if [ $i -ge $((limit * 10)) ]; then return 1; fi
        sleep 0.1
        i=$((i + 1))
    done
    # A foreground talusfs is the child of its waiter (see mt_mount), whose
    # exit status is talusfs's.
    waiter=${MT_WAITER[$pid]:-$pid}
    if wait "$waiter" 2>/dev/null; then MT_EXIT=0; else MT_EXIT=$?; fi
    # Not our child: wait fails with 127; the status is unknown.
    [ "$MT_EXIT" = 127 ] && MT_EXIT=unknown
    return 0
}

mt_cleanup() {
    local rc=$? m p
    trap - EXIT
    set +e
    [ -n "$MT_WATCHDOG" ] && kill "$MT_WATCHDOG" 2>/dev/null
    cd / || true
    for m in "${MT_MOUNTS[@]}"; do
        mt_force_unmount "$m"
    done
    if [ -n "$W" ] && [ -f "$W/pids" ]; then
        for p in $(cat "$W/pids"); do
            if kill -0 "$p" 2>/dev/null && ! mt_wait_exit "$p" 10; then
                say "talusfs pid $p still running after unmount: SIGKILL" >&2
                kill -9 "$p" 2>/dev/null
            fi
        done
    fi
    for m in "${MT_MOUNTS[@]}"; do
        mt_force_unmount "$m"
    done
    if [ -n "$W" ] && [ -d "$W" ]; then
        if awk -v w="$W/" 'index($5, w) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
            say "something is still mounted below $W: not removing it" >&2
            rc=99
        elif [ "${KEEP:-0}" = 1 ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ "${KEEP_ON_FAIL:-0}" = 1 ]; }; then
            say "work directory kept: $W"
        else
            rm -rf "$W"
        fi
    fi
    exit $rc
}

# The watchdog: after $1 seconds, kill this test's talusfs processes (so
# that any syscall blocked on the mount returns ENOTCONN), unmount lazily and
# end the script. It polls once a second so it dies with the script.
mt_start_watchdog() {
    local limit=$1 top=$$
    (
        trap - EXIT
        i=0
        while [ $i -lt "$limit" ]; do
            kill -0 "$top" 2>/dev/null || exit 0
            sleep 1
            i=$((i + 1))
        done
        echo "$MT_NAME: ERROR: timeout: still running after $limit s; killing talusfs" >&2
        for p in $(cat "$W/pids" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        awk -v w="$W/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | while read -r m; do
            umount -l "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null
        done
        kill -TERM "$top" 2>/dev/null
        sleep 10
        pkill -9 -P "$top" 2>/dev/null
        kill -9 "$top" 2>/dev/null
    ) &
    MT_WATCHDOG=$!
}

# mt_init SECONDS: check prerequisites, make the work directory $W, set the
# traps and start the watchdog.
mt_init() {
    local limit=${1:-120}
    if [ "${MT_NATIVE:-0}" != 1 ]; then
        [ -e /dev/fuse ] || mt_skip "/dev/fuse is absent (no FUSE in this environment)"
        [ -x "$TALUSFS" ] || mt_skip "talusfs was not built ($TALUSFS missing; configure found no libfuse3?)"
        [ -x "$TALUS" ] || mt_skip "the talus CLI was not built ($TALUS missing)"
        command -v fusermount3 >/dev/null || mt_error "fusermount3 not found (install fuse3)"
    fi
    W=$(mktemp -d "${TMPDIR:-/tmp}/talusfs-$MT_NAME-XXXXXX") || mt_error "mktemp failed"
    : >"$W/pids"
    trap mt_cleanup EXIT
    trap 'exit 99' TERM INT HUP
    mt_start_watchdog "$limit"
    say "work directory $W, talusfs $TALUSFS"
}

# mt_mount DB MNT [OPTION]...: mount in the foreground mode (-f) as our
# background child, and wait until the mount is up. Options go before the
# positional arguments. Returns 1 (with the log shown) if it did not mount.
mt_mount() {
    local db=$1 mnt=$2 pid i=0 rc start waiter
    shift 2
    mkdir -p "$mnt"
    # MT_NATIVE=1 (a development aid): no mount at all, the scripts run on a
    # plain directory, to check the tests' own logic.
    if [ "${MT_NATIVE:-0}" = 1 ]; then return 0; fi
    echo "== $(mt_quote "$TALUSFS" -f "$@" "$db" "$mnt")" >>"$W/talusfs.log"
    start=$(wc -l <"$W/talusfs.log")
    # talusfs runs as the child of a small perl waiter (our background job)
    # that writes talusfs's pid to a file and exits with its status, so that
    # a talusfs killed by a signal shows as a status, not as a "Killed" line
    # from bash. The waiter also restores SIGINT, which a background job of
    # a non-interactive shell starts with ignored (libfuse keeps an ignored
    # signal ignored), so that SIGINT works as in a terminal.
    rm -f "$W/tfs.pid"
    perl -e '
        $SIG{INT} = "DEFAULT"; $SIG{QUIT} = "DEFAULT";
        my $pidfile = shift;
        my $pid = fork() // die "fork: $!\n";
        if ($pid == 0) { exec(@ARGV) or die "exec $ARGV[0]: $!\n" }
        open(my $f, ">", "$pidfile.tmp") or die; print $f "$pid\n"; close($f);
        rename("$pidfile.tmp", $pidfile) or die;
        $SIG{INT} = "IGNORE"; $SIG{QUIT} = "IGNORE"; $SIG{TERM} = "IGNORE";
        waitpid($pid, 0);
        exit($? & 127 ? 128 + ($? & 127) : $? >> 8);' "$W/tfs.pid" \
        "$TALUSFS" -f "$@" "$db" "$mnt" >>"$W/talusfs.log" 2>&1 &
    waiter=$!
    while [ ! -s "$W/tfs.pid" ] && kill -0 "$waiter" 2>/dev/null; do sleep 0.02; done
    pid=$(cat "$W/tfs.pid" 2>/dev/null)
    if [ -z "$pid" ]; then
        bad "mount: could not start $TALUSFS: $(tail -n +$((start + 1)) "$W/talusfs.log" | head -n 5 | tr '\n' ' ')"
        return 1
    fi
    MT_WAITER[$pid]=$waiter
    mt_remember_pid "$mnt" "$pid"
    MT_MOUNTS+=("$mnt")
    while ! mountpoint -q "$mnt"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$waiter"
            rc=$?
            unset "MT_PID[$mnt]"
            bad "mount: \`$(mt_quote "$TALUSFS" -f "$@" "$db" "$mnt")\` exited $rc before mounting: $(tail -n +$((start + 1)) "$W/talusfs.log" | head -n 5 | tr '\n' ' ')"
            return 1
        fi
        if [ $i -ge 300 ]; then
            unset "MT_PID[$mnt]"
            bad "mount: $mnt not mounted after 30 s: $(tail -n +$((start + 1)) "$W/talusfs.log" | head -n 5 | tr '\n' ' ')"
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 0
}

# mt_mount_daemon DB MNT [OPTION]...: mount in daemon mode (the default);
# talusfs must return 0 with the mount up; the daemon's pid is recorded.
mt_mount_daemon() {
    local db=$1 mnt=$2 pid rc
    shift 2
    mkdir -p "$mnt"
    MT_MOUNTS+=("$mnt")
    echo "== $(mt_quote "$TALUSFS" "$@" "$db" "$mnt")" >>"$W/talusfs.log"
    local start
    start=$(wc -l <"$W/talusfs.log")
    timeout -k 5 30 "$TALUSFS" "$@" "$db" "$mnt" >>"$W/talusfs.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        bad "daemon mount: \`$(mt_quote "$TALUSFS" "$@" "$db" "$mnt")\` exited $rc: $(tail -n +$((start + 1)) "$W/talusfs.log" | head -n 5 | tr '\n' ' ')"
        return 1
    fi
    local i=0
    while ! mountpoint -q "$mnt"; do
        if [ $i -ge 100 ]; then
            bad "daemon mount: talusfs returned 0 but $mnt is not mounted after 10 s"
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
    pid=$(mt_pids_of_mount "$mnt" | head -n 1)
    if [ -z "$pid" ]; then
        bad "daemon mount: no talusfs process found for $mnt"
        return 1
    fi
    mt_remember_pid "$mnt" "$pid"
    return 0
}

# mt_umount MNT: unmount, wait for talusfs to exit (it flushes and closes
# the database first) and check that it exited with status 0. After this
# returns 0 the database is closed and may be opened by `talus`.
mt_umount() {
    local mnt=$1 pid
    if [ "${MT_NATIVE:-0}" = 1 ]; then return 0; fi
    pid=${MT_PID[$mnt]:-}
    if ! mt_force_unmount "$mnt"; then
        bad "umount: could not unmount $mnt"
        return 1
    fi
    [ -n "$pid" ] || return 0
    if ! mt_wait_exit "$pid" 30; then
        bad "umount: talusfs (pid $pid) did not exit within 30 s of unmounting $mnt"
        kill -9 "$pid" 2>/dev/null
        return 1
    fi
    unset "MT_PID[$mnt]"
    if [ "$MT_EXIT" != 0 ] && [ "$MT_EXIT" != unknown ]; then
        bad "umount: talusfs exited with status $MT_EXIT after unmount of $mnt; its output:"
        mt_show_log >&2
        return 1
    fi
    return 0
}

# mt_crash MNT: SIGKILL the talusfs serving MNT (a process crash) and wait
# for it to die; the mount stays, dead (ENOTCONN), until mt_force_unmount.
mt_crash() {
    local mnt=$1 pid
    pid=${MT_PID[$mnt]:-}
    [ -n "$pid" ] || { bad "crash: no talusfs pid for $mnt"; return 1; }
    kill -9 "$pid"
    mt_wait_exit "$pid" 10 || { bad "crash: talusfs pid $pid survived SIGKILL"; return 1; }
    unset "MT_PID[$mnt]"
}

# mt_kill9 MNT: mt_crash, then remove the dead mount.
mt_kill9() {
    mt_crash "$1" || return 1
    mt_force_unmount "$1" || { bad "kill9: dead mount $1 would not go away"; return 1; }
}

mt_finish() {
    # A sanitizer report from any talusfs run is a failure even if the
    # checks passed (e.g. a leak on an error path that exits 1 anyway).
    if [ -f "$W/talusfs.log" ] && grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$W/talusfs.log"; then
        bad "talusfs printed a sanitizer report:"
        mt_show_log >&2
    fi
    say "$MT_PASS passed, $MT_FAIL failed"
    [ "$MT_FAIL" -eq 0 ] && exit 0
    exit 1
}

# --- small tools -----------------------------------------------------------

# python3 as a program (for background jobs, whose pid must be python's).
PY=$(command -v python3 || echo /usr/bin/python3)

mt_python() {
    if command -v python3 >/dev/null; then
        python3 "$@"
    elif [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 "$@"
    else
        echo "python3 not found" >&2
        return 127
    fi
}
have_python() { command -v python3 >/dev/null || [ -x /usr/bin/python3 ]; }

# Extended attributes through python (the attr package may be absent).
xattr_get() { mt_python -c 'import os,sys; sys.stdout.buffer.write(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False))' "$1" "$2"; }
xattr_set() { mt_python -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)' "$1" "$2" "$3"; }
xattr_del() { mt_python -c 'import os,sys; os.removexattr(sys.argv[1], sys.argv[2], follow_symlinks=False)' "$1" "$2"; }
xattr_list() { mt_python -c 'import os,sys; print("\n".join(sorted(os.listxattr(sys.argv[1], follow_symlinks=False))))' "$1"; }

# The mount's current seqno (the root xattr user.talus.seqno), digits only.
mt_seqno() {
    xattr_get "$1" user.talus.seqno | tr -cd '0-9'
}

# A listing of a tree's metadata that two identical trees share: path,
# type, mode, owner, size of non-directories, mtime with nanoseconds, link
# target. Directory sizes and atimes are left out (they legitimately differ).
mt_manifest() {
    (cd "$1" && find . -mindepth 1 \( -type d -printf '%p %y %m %U:%G - %T@ -\n' \) -o \
        \( ! -type d -printf '%p %y %m %U:%G %s %T@ %l\n' \) | LC_ALL=C sort)
}

# Deterministic bytes in which every 15-byte line is distinct (so a block
# written at the wrong offset shows): mt_bytes SEED COUNT.
# mt_random_file PATH SIZE SEED: SIZE bytes of seeded random data (not
# compressible, unlike mt_bytes) into PATH.
mt_random_file() {
    mt_python - "$1" "$2" "$3" <<'EOF'
import random, sys
r = random.Random(sys.argv[3])
n = int(sys.argv[2])
with open(sys.argv[1], "wb") as f:
    while n > 0:
        k = min(n, 1 << 20)
        f.write(r.getrandbits(8 * k).to_bytes(k, "little"))
        n -= k
EOF
}

# mt_no_tmp DIR: fails, naming them, if files *.tmp are left below DIR.
mt_no_tmp() {
    local left
    left=$(find "$1" -name '*.tmp')
    [ -z "$left" ] || { echo "left behind: $left" >&2; return 1; }
}

mt_bytes() {
    seq -f "%011.0f $1" 1 $(($2 / 12 + 1)) | cut -c1-15 | head -c "$2"
}
