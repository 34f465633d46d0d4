#!/bin/bash
# fsbench.sh - the filesystem workloads of DESIGN.md section 7, run in one go
# on (a) a native directory, (b) the libfuse passthrough_ll example over a
# native directory and (c) a talusfs mount, so that the ratios come from one
# run on one (noisy, shared) machine. See bench/fs/README.md.
#
#   create   8,000 files of 1 KiB in 80 directories
#   stat     lstat every file
#   read     read every file
#   ls-lR    ls -lR of the tree
#   rsync    rsync -a of a snapshot of the tree to a native directory
#            (talusfs: of .snap/N after pinning N; others: of the tree)
#   rename   rename every file (within its directory)
#   delete   rm -rf of the tree
#   write-large / read-large
#            dd bs=1M of one large file (default 1 GiB), conv=fsync on the
#            write; FUSE targets are remounted and, as root, the page cache
#            is dropped between the write and the read
#
# The per-file workloads are each one perl process doing the system calls in
# a loop, so the times are the filesystem's, not fork()'s. Each phase is
# checked (counts, sizes; contents with --verify) so a broken target cannot
# post a fast time; a failed or timed-out phase shows as FAIL.
#
# Usage: fsbench.sh [--quick] [--files N] [--dirs N] [--large-size SIZE]
#                   [--targets native,passthrough,talusfs] [--json FILE]
#                   [--workdir DIR] [--verify] [--cold] [--keep]
# Environment: TALUSFS, TALUS (default: ./mount/talusfs, ./mount/talus),
# CC (default cc) to build passthrough_ll, PASSTHROUGH_LL to use a prebuilt one.
set -u

NAME=fsbench
FILES=8000
DIRS=80
LARGE=1G
TARGETS=native,passthrough,talusfs
JSON=
WORKDIR=
VERIFY=0
COLD=0
KEEP=0
QUICK=0
PHASE_TIMEOUT=900
TALUSFS=${TALUSFS:-$PWD/mount/talusfs}
TALUS=${TALUS:-$PWD/mount/talus}
EXAMPLES=${LIBFUSE_EXAMPLES:-/usr/share/doc/libfuse3-dev/examples}

usage() {
    sed -n '/^# Usage:/,/^# CC/p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}
die() {
    echo "$NAME: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --quick)
        QUICK=1
        FILES=200
        DIRS=10
        LARGE=16M
        VERIFY=1
        PHASE_TIMEOUT=60
        ;;
    --files) FILES=${2:?}; shift ;;
    --dirs) DIRS=${2:?}; shift ;;
    --large-size) LARGE=${2:?}; shift ;;
    --targets) TARGETS=${2:?}; shift ;;
    --json) JSON=${2:?}; shift ;;
    --workdir) WORKDIR=${2:?}; shift ;;
    --verify) VERIFY=1 ;;
    --cold) COLD=1 ;;
    --keep) KEEP=1 ;;
    -h | --help) usage 0 ;;
    *) echo "$NAME: unknown option '$1'" >&2; usage 2 >&2 ;;
    esac
    shift
done
LARGE_BYTES=$(numfmt --from=iec "$LARGE" 2>/dev/null) || die "bad --large-size '$LARGE' (e.g. 1G, 512M)"
[ "$LARGE_BYTES" -ge 1048576 ] || die "--large-size must be at least 1M"
LARGE_MB=$((LARGE_BYTES / 1048576))
[ "$FILES" -ge "$DIRS" ] && [ "$DIRS" -ge 1 ] || die "need --files >= --dirs >= 1"
command -v perl >/dev/null || die "perl is needed"
command -v rsync >/dev/null || die "rsync is needed"

WORKLOADS=(create stat read ls-lR rsync rename delete write-large read-large)
IFS=, read -r -a TLIST <<<"$TARGETS"
for t in "${TLIST[@]}"; do
    case $t in native | passthrough | talusfs) ;; *) die "unknown target '$t'" ;; esac
done

W=$(mktemp -d "${WORKDIR:-${TMPDIR:-/var/tmp}}/fsbench-XXXXXX") || die "mktemp failed"
declare -A RES=()   # RES[workload,target] = seconds | FAIL | n/a
declare -A NOTE=()  # NOTE[target] = why it is unavailable
MOUNT_PID=
MOUNT_AT=

is_mounted() {
    awk -v m="$(readlink -m "$1")" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}
unmount_current() {
    [ -n "$MOUNT_AT" ] || return 0
    local i
    for i in $(seq 1 20); do
        is_mounted "$MOUNT_AT" || break
        fusermount3 -u "$MOUNT_AT" 2>/dev/null || umount "$MOUNT_AT" 2>/dev/null || sleep 0.3
    done
    is_mounted "$MOUNT_AT" && { fusermount3 -uz "$MOUNT_AT" 2>/dev/null || umount -l "$MOUNT_AT"; }
    if [ -n "$MOUNT_PID" ]; then
        for i in $(seq 1 300); do kill -0 "$MOUNT_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$MOUNT_PID" 2>/dev/null && kill -9 "$MOUNT_PID"
        wait "$MOUNT_PID" 2>/dev/null
    fi
    MOUNT_PID=
    MOUNT_AT=
    DEAD_REPORTED=
}
cleanup() {
    trap - EXIT
    cd /
    unmount_current
    if awk -v w="$W/" 'index($5, w) == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
        echo "$NAME: something is still mounted below $W; not removing it" >&2
    elif [ "$KEEP" = 1 ]; then
        echo "$NAME: work directory kept: $W" >&2
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# mount_fuse MNT CMD...: start a FUSE server in the foreground (our child)
# and wait for the mount.
mount_fuse() {
    local mnt=$1 i
    shift
    mkdir -p "$mnt"
    "$@" >>"$W/server.log" 2>&1 &
    MOUNT_PID=$!
    MOUNT_AT=$mnt
    for i in $(seq 1 300); do
        mountpoint -q "$mnt" && return 0
        kill -0 "$MOUNT_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "$NAME: could not mount $mnt with: $*; log: $(tail -n 3 "$W/server.log" | tr '\n' ' ')" >&2
    unmount_current
    return 1
}

drop_caches() {
    sync
    if [ "$COLD" = 1 ] || [ "${1:-}" = large ]; then
        if [ -w /proc/sys/vm/drop_caches ] && [ "$QUICK" = 0 ]; then
            echo 3 >/proc/sys/vm/drop_caches
        fi
    fi
}

# --- the targets ---------------------------------------------------------------
PT_BIN=
build_passthrough() {
    if [ -n "${PASSTHROUGH_LL:-}" ]; then
        PT_BIN=$PASSTHROUGH_LL
        return 0
    fi
    [ -f "$EXAMPLES/passthrough_ll.c" ] || { NOTE[passthrough]="no $EXAMPLES/passthrough_ll.c (libfuse3-dev)"; return 1; }
    pkg-config --exists fuse3 || { NOTE[passthrough]="pkg-config finds no fuse3"; return 1; }
    # shellcheck disable=SC2046
    if ! ${CC:-cc} -O2 -w -DHAVE_UTIMENSAT -DHAVE_POSIX_FALLOCATE -DHAVE_SETXATTR -DHAVE_FSTATAT \
        -I"$EXAMPLES" "$EXAMPLES/passthrough_ll.c" $(pkg-config --cflags --libs fuse3) \
        -o "$W/passthrough_ll" 2>"$W/cc.log"; then
        NOTE[passthrough]="passthrough_ll did not build: $(head -c 200 "$W/cc.log")"
        return 1
    fi
    PT_BIN=$W/passthrough_ll
}

# target_up T: make $ROOT a directory of target T (mounting as needed).
target_up() {
    case $1 in
    native)
        mkdir -p "$W/native"
        ROOT=$W/native
        ;;
    passthrough)
        mkdir -p "$W/pt-src"
        mount_fuse "$W/pt-mnt" "$PT_BIN" -f -o "source=$W/pt-src" "$W/pt-mnt" || return 1
        ROOT=$W/pt-mnt
        ;;
    talusfs)
        mount_fuse "$W/tfs-mnt" "$TALUSFS" -f "$W/tfs-db" "$W/tfs-mnt" || return 1
        ROOT=$W/tfs-mnt
        ;;
    esac
}
target_down() {
    case $1 in native) ;; *) unmount_current ;; esac
}
remount() {
    target_down "$1" && target_up "$1"
}

# --- timing ----------------------------------------------------------------------
# Is the FUSE server of the current target still running? The first time it
# is found dead, show the end of its log.
server_alive() {
    [ -n "$MOUNT_PID" ] || return 0
    kill -0 "$MOUNT_PID" 2>/dev/null && return 0
    if [ -z "${DEAD_REPORTED:-}" ]; then
        DEAD_REPORTED=1
        echo "$NAME: the FUSE server (pid $MOUNT_PID) died; the end of its output:" >&2
        grep -v '^ *0x\|redzone\|Shadow' "$W/server.log" | tail -n 40 | sed 's/^/    | /' >&2
    fi
    return 1
}

# phase WORKLOAD TARGET CMD...: time CMD (bounded by the phase timeout).
phase() {
    local w=$1 t=$2 t0 t1 rc
    shift 2
    if ! server_alive; then
        RES[$w,$t]=FAIL
        [ "${QUIET:-0}" = 1 ] || printf '  %-12s %-12s %s\n' "$t" "$w" "FAIL (server died)" >&2
        return 1
    fi
    t0=$(date +%s.%N)
    timeout -k 10 "$PHASE_TIMEOUT" "$@" >"$W/phase.out" 2>"$W/phase.err"
    rc=$?
    t1=$(date +%s.%N)
    if [ $rc -eq 0 ]; then
        RES[$w,$t]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    else
        RES[$w,$t]=FAIL
        echo "$NAME: $t: $w failed (exit $rc$([ $rc = 124 ] && echo ", timeout after $PHASE_TIMEOUT s")): $(head -c 300 "$W/phase.err" | tr '\n' ' ')" >&2
    fi
    [ "${QUIET:-0}" = 1 ] || printf '  %-12s %-12s %s\n' "$t" "$w" "${RES[$w,$t]}" >&2
    [ $rc -eq 0 ]
}
# check_phase WORKLOAD TARGET CMD...: an untimed check; turns the result into FAIL.
check_phase() {
    local w=$1 t=$2
    shift 2
    if ! "$@" >"$W/check.out" 2>&1; then
        echo "$NAME: $t: $w: check failed: $(head -c 300 "$W/check.out" | tr '\n' ' ')" >&2
        RES[$w,$t]=FAIL
        return 1
    fi
}

# The per-file workloads: one perl process each, a loop of system calls.
# They are written to files so that `timeout` can run them.
write_perl() {
    local common='my ($root, $n, $nd) = @ARGV;
sub p { my ($i, $pre) = @_; "$root/t/d" . ($i % $nd) . "/$pre$i" }
my $blk = join("", map { chr(33 + ($_ * 7919) % 90) } 0 .. 1015);
'
    printf '%s%s' "$common" '
mkdir "$root/t" or die "mkdir: $!";
for my $d (0 .. $nd - 1) { mkdir "$root/t/d$d" or die "mkdir d$d: $!" }
for my $i (0 .. $n - 1) {
    open(my $f, ">", p($i, "f")) or die p($i, "f") . ": $!";
    print $f sprintf("%08d", $i), $blk or die "write: $!";
    close($f) or die "close: $!";
}' >"$W/create.pl"
    printf '%s%s' "$common" '
for my $i (0 .. $n - 1) {
    my @s = lstat(p($i, "f")) or die p($i, "f") . ": $!";
    $s[7] == 1024 or die p($i, "f") . ": size $s[7]";
}' >"$W/stat.pl"
    printf '%s%s' "$common" '
my $verify = $ENV{FSB_VERIFY};
for my $i (0 .. $n - 1) {
    open(my $f, "<", p($i, "f")) or die p($i, "f") . ": $!";
    my ($buf, $all) = ("", "");
    while (my $got = sysread($f, $buf, 65536)) { $all .= $buf }
    close($f);
    length($all) == 1024 or die p($i, "f") . ": read " . length($all) . " bytes";
    !$verify or $all eq sprintf("%08d", $i) . $blk or die p($i, "f") . ": wrong contents";
}' >"$W/read.pl"
    printf '%s%s' "$common" '
for my $i (0 .. $n - 1) { rename(p($i, "f"), p($i, "g")) or die p($i, "f") . ": $!" }' >"$W/rename.pl"
}
pl_count() { # prints the number of files named $2* below $1/t
    find "$1/t" -type f -name "$2*" | wc -l
}

# rsync of a snapshot: talusfs pins the current seqno; the others copy the tree.
do_rsync() {
    local t=$1 src
    rm -rf "$W/rsync-out"
    src=$ROOT/t/
    if [ "$t" = talusfs ]; then
        # `talus snapshot MOUNTPOINT` pins the current seqno (mkdir
        # .snap/N after reading user.talus.seqno) and prints the path.
        SNAP=$("$TALUS" snapshot "$ROOT" 2>"$W/snap.err") || {
            RES[rsync,$t]=FAIL
            echo "$NAME: talusfs: talus snapshot $ROOT failed: $(cat "$W/snap.err")" >&2
            return 1
        }
        src=$SNAP/t/
    fi
    phase rsync "$t" rsync -a "$src" "$W/rsync-out/"
    check_phase rsync "$t" test "$(find "$W/rsync-out" -type f | wc -l)" = "$FILES"
    [ "$t" = talusfs ] && [ -n "${SNAP:-}" ] && rmdir "$SNAP"
    SNAP=
    rm -rf "$W/rsync-out"
}
run_target() {
    local t=$1 w
    echo "== $t" >&2
    for w in "${WORKLOADS[@]}"; do RES[$w,$t]=n/a; done
    if [ "$t" = passthrough ] && [ -z "$PT_BIN" ]; then
        echo "  skipped: ${NOTE[passthrough]}" >&2
        return
    fi
    if [ "$t" = talusfs ] && [ ! -x "$TALUSFS" ]; then
        NOTE[talusfs]="$TALUSFS not built"
        echo "  skipped: ${NOTE[talusfs]}" >&2
        return
    fi
    target_up "$t" || { NOTE[$t]="could not mount"; return; }
    local args=("$ROOT" "$FILES" "$DIRS")

    phase create "$t" perl "$W/create.pl" "${args[@]}" &&
        check_phase create "$t" test "$(pl_count "$ROOT" f)" = "$FILES"
    [ "$COLD" = 1 ] && { drop_caches; remount "$t" || return; args[0]=$ROOT; }
    phase stat "$t" perl "$W/stat.pl" "${args[@]}"
    [ "$COLD" = 1 ] && { drop_caches; remount "$t" || return; args[0]=$ROOT; }
    FSB_VERIFY=$VERIFY phase read "$t" perl "$W/read.pl" "${args[@]}"
    [ "$COLD" = 1 ] && { drop_caches; remount "$t" || return; args[0]=$ROOT; }
    phase ls-lR "$t" ls -lR "$ROOT/t" &&
        check_phase ls-lR "$t" test "$(grep -c '^-' "$W/phase.out")" = "$FILES"
    do_rsync "$t"
    phase rename "$t" perl "$W/rename.pl" "${args[@]}" &&
        check_phase rename "$t" test "$(pl_count "$ROOT" g)" = "$FILES" -a "$(pl_count "$ROOT" f)" = 0
    phase delete "$t" rm -rf "$ROOT/t" &&
        check_phase delete "$t" test ! -e "$ROOT/t"

    phase write-large "$t" dd if="$W/large.src" of="$ROOT/large" bs=1M conv=fsync status=none &&
        check_phase write-large "$t" test "$(stat -c %s "$ROOT/large")" = "$LARGE_BYTES"
    remount "$t" || return
    drop_caches large
    phase read-large "$t" dd if="$ROOT/large" of=/dev/null bs=1M status=none
    if [ "$VERIFY" = 1 ]; then
        check_phase read-large "$t" cmp "$W/large.src" "$ROOT/large"
    fi
    rm -f "$ROOT/large"
    target_down "$t"
}

# --- run -------------------------------------------------------------------------
echo "$NAME: $FILES files in $DIRS directories, large file $LARGE ($LARGE_BYTES bytes); work dir $W" >&2
write_perl
for t in "${TLIST[@]}"; do
    if [ "$t" = passthrough ]; then build_passthrough; fi
done
# The large file's source: incompressible, on the native disk, read once so
# the write phase measures the target and not the source.
head -c "$LARGE_BYTES" /dev/urandom >"$W/large.src" || die "cannot make the large source file"
cat "$W/large.src" >/dev/null
for t in "${TLIST[@]}"; do run_target "$t"; done

# --- report ------------------------------------------------------------------------
ratio() { # ratio A B: A/B, or "-" when either is not a number
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
has() { [[ ",$TARGETS," == *",$1,"* ]]; }
{
    printf '%-12s' workload
    for t in "${TLIST[@]}"; do printf ' %12s' "$t"; done
    has talusfs && has passthrough && printf ' %14s' "tfs/passthru"
    has talusfs && has native && printf ' %12s' "tfs/native"
    printf '\n'
    for w in "${WORKLOADS[@]}"; do
        printf '%-12s' "$w"
        for t in "${TLIST[@]}"; do printf ' %12s' "${RES[$w,$t]}"; done
        has talusfs && has passthrough && printf ' %14s' "$(ratio "${RES[$w,talusfs]}" "${RES[$w,passthrough]}")"
        has talusfs && has native && printf ' %12s' "$(ratio "${RES[$w,talusfs]}" "${RES[$w,native]}")"
        printf '\n'
    done
    echo "(seconds; $FILES files of 1 KiB in $DIRS dirs, large file $LARGE_MB MiB; lower is better)"
    for t in "${!NOTE[@]}"; do echo "note: $t: ${NOTE[$t]}"; done
}

if [ -n "$JSON" ]; then
    {
        printf '{\n  "config": {"files": %d, "dirs": %d, "file_size": 1024, "large_bytes": %d, "cold": %s, "host": "%s", "date": "%s"},\n' \
            "$FILES" "$DIRS" "$LARGE_BYTES" "$([ "$COLD" = 1 ] && echo true || echo false)" \
            "$(hostname 2>/dev/null | tr -d '"\\')" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        printf '  "seconds": {\n'
        sep=
        for w in "${WORKLOADS[@]}"; do
            printf '%s    "%s": {' "$sep" "$w"
            s2=
            for t in "${TLIST[@]}"; do
                v=${RES[$w,$t]}
                case $v in [0-9]*) printf '%s"%s": %s' "$s2" "$t" "$v" ;; *) printf '%s"%s": null' "$s2" "$t" ;; esac
                s2=", "
            done
            printf '}'
            sep=$',\n'
        done
        printf '\n  },\n  "ratios": {\n'
        sep=
        for w in "${WORKLOADS[@]}"; do
            a=$(ratio "${RES[$w,talusfs]:-}" "${RES[$w,passthrough]:-}")
            b=$(ratio "${RES[$w,talusfs]:-}" "${RES[$w,native]:-}")
            [ "$a" = - ] && a=null
            [ "$b" = - ] && b=null
            printf '%s    "%s": {"talusfs/passthrough": %s, "talusfs/native": %s}' "$sep" "$w" "$a" "$b"
            sep=$',\n'
        done
        printf '\n  }\n}\n'
    } >"$JSON" || die "cannot write $JSON"
fi

failed=0
for k in "${!RES[@]}"; do [ "${RES[$k]}" = FAIL ] && failed=1; done
exit $failed
