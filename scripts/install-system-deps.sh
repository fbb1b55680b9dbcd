#!/usr/bin/env bash
# Installs the Debian packages the pipeline uses, when they are missing and we can:
#   dataset-fashion-mnist   Fashion-MNIST IDX files under /usr/share/datasets/fashion-mnist
#   gcc-arm-none-eabi, libnewlib-arm-none-eabi   the Cortex-M toolchain and C library
#   qemu-system-arm         the mps2-an500 (Cortex-M7) simulator
# Elsewhere (not root, not Debian) it prints how to get them and succeeds: the stages that
# need a missing tool are then marked skipped with the same hint (a failure under CI=true).
set -euo pipefail
packages=(dataset-fashion-mnist gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  echo "system deps: not a Debian system; install by hand: ${packages[*]} (or equivalents)" >&2
  exit 0
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system deps: missing ${missing[*]}; run: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
echo "system deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
