#!/usr/bin/env bash
# Installs (as root) or checks (otherwise) the system packages hdlabel needs:
# OpenBLAS (+LAPACK), OpenMPI, zlib, the Fashion-MNIST data package used by the demo and benchmarks, and iproute2 + bc
# for the multi-host (network namespace) tests.
set -euo pipefail
PKGS=(libopenblas-dev libopenmpi-dev openmpi-bin zlib1g-dev pkg-config dataset-fashion-mnist chromium iproute2 bc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  echo "deps: missing system packages: ${missing[*]}" >&2
  echo "deps: install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
command -v swift >/dev/null || { echo "deps: the Swift 6 toolchain (swift) is not on PATH" >&2; exit 1; }
