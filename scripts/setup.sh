#!/usr/bin/env bash
# setup.sh installs what the tests and the demo need on a fresh Debian machine:
# the Debian packages (Fashion-MNIST for ANN recall, clang/lld/wasi-libc for the C
# plugins, wrk for load tests) and the Go modules. It is idempotent and quick when
# everything is already there.
set -euo pipefail

pkgs=(dataset-fashion-mnist clang lld wasi-libc libclang-rt-14-dev-wasm32 wrk)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
