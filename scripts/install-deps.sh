#!/usr/bin/env bash
# install-deps.sh: install the Debian 12 packages Strata needs to build, test and run.
# Installs only what is missing. Needs root for apt-get; otherwise names the
# missing packages and exits non-zero. Usage: install-deps.sh [build|test|bench]
set -euo pipefail

what="${1:-build}"
pkgs=(build-essential cmake pkg-config
      libzstd-dev liblz4-dev librocksdb-dev libprotobuf-c-dev protobuf-c-compiler
      libevent-dev libroaring-dev libxxhash-dev zlib1g-dev libdeflate-dev libsnappy-dev libjson-c-dev)
case "$what" in
    test) pkgs+=(libcmocka-dev curl procps iproute2 golang-go prometheus protobuf-compiler) ;;
    bench) pkgs+=(curl) ;;
    fuzz) pkgs+=(libcmocka-dev clang libclang-rt-14-dev) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "strata: missing Debian packages: ${missing[*]}" >&2
    echo "strata: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "strata: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
