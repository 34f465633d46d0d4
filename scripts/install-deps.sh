#!/usr/bin/env bash
# Install everything Talus needs to build, test and benchmark on Debian 12.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential autoconf automake libtool pkg-config \
    liblz4-dev libzstd-dev libxxhash-dev libcmocka-dev libfuse3-dev fuse3 \
    rsync diffutils findutils coreutils python3 perl util-linux \
    librocksdb-dev libleveldb-dev liblmdb-dev >/dev/null
