#!/usr/bin/env bash
# build-wasm.sh builds Podium's Wasm plugins and test guests from source.
#
#   scripts/build-wasm.sh              build every guest: each directory under plugins/ that
#                                      holds a main.go (Go guest) or *.c (C guest) becomes
#                                      <dir>.wasm next to it; guests under */testdata/ are
#                                      built into the cache only (tests ask for them).
#   scripts/build-wasm.sh SRC OUT      build the one guest in directory SRC into OUT
#                                      (OUT "-" writes the module to stdout).
#
# A guest's manifest is SRC/manifest.json or SRC/../manifest.json; it is embedded as the
# "podium.manifest" custom section. Builds are cached in $PODIUM_WASM_CACHE (default
# .cache/wasm) under the sha256 of the sources, the SDK, this script, the flags and the
# toolchain versions, so a second run costs a hash.
#
# Exact commands (see plugins/*/README.md):
#   Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-w -o OUT ./SRC
#   C:  clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -Wl,--no-entry
#             -Wl,--strip-debug -I sdk/c -I SRC/.. $PODIUM_CFLAGS -o OUT SRC/*.c
#   then: go run ./sdk/cmd/podium-manifest embed OUT MANIFEST OUT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${PODIUM_WASM_CACHE:-$root/.cache/wasm}
mkdir -p "$cache"
CFLAGS_BASE=(--target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -Wl,--no-entry -Wl,--strip-debug -I "$root/sdk/c")
read -r -a CFLAGS_EXTRA <<<"${PODIUM_CFLAGS:-}"

tool=""
manifest_tool() {
  if [ -z "$tool" ]; then
    tool="$cache/podium-manifest.$$"
    GOOS= GOARCH= go build -o "$tool" ./sdk/cmd/podium-manifest
    trap 'rm -f "$tool"' EXIT
  fi
}

toolchain_id() {
  case $1 in
    go) go version ;;
    c) clang --version | head -1 ;;
  esac
}

# build_one SRC OUT: build the guest in SRC (relative or absolute) into OUT via the cache.
build_one() {
  local src=${1%/} out=$2 lang manifest key hit tmp
  if [ -f "$src/main.go" ]; then lang=go
  elif compgen -G "$src/*.c" >/dev/null; then lang=c
  else echo "build-wasm: $src has no main.go or *.c" >&2; return 1; fi
  manifest=""
  if [ -f "$src/manifest.json" ]; then manifest=$src/manifest.json
  elif [ -f "$src/../manifest.json" ]; then manifest=$src/../manifest.json; fi
  key=$(
    {
      echo "lang=$lang flags=${PODIUM_CFLAGS:-}"
      toolchain_id "$lang"
      cat "$root/scripts/build-wasm.sh"
      find "$src" -maxdepth 1 -type f \( -name '*.go' -o -name '*.c' -o -name '*.h' -o -name 'go.mod' \) -print0 | sort -z | xargs -0 cat
      [ -n "$manifest" ] && cat "$manifest"
      # Go: every non-standard package the guest imports (its native logic package, the
      # SDK), so that editing any of them rebuilds the guest.
      if [ $lang = go ]; then
        (cd "$src" && GOOS=wasip1 GOARCH=wasm go list -deps -f '{{if not .Standard}}{{.Dir}}{{end}}' .) | sort -u |
          while read -r d; do find "$d" -maxdepth 1 -name '*.go' -not -name '*_test.go' -print0 | sort -z | xargs -0 cat; done
      fi
      if [ $lang = c ]; then cat "$root"/sdk/c/*.h; find "$src/.." -maxdepth 1 -name '*.h' -print0 | sort -z | xargs -0 -r cat; fi
    } | sha256sum | cut -c1-32
  )
  hit=$cache/$key.wasm
  if [ ! -f "$hit" ]; then
    tmp=$(mktemp "$cache/build.XXXXXX")
    if [ $lang = go ]; then
      (cd "$src" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-w -o "$tmp" .)
    else
      clang "${CFLAGS_BASE[@]}" -I "$src/.." ${CFLAGS_EXTRA[@]+"${CFLAGS_EXTRA[@]}"} -o "$tmp" "$src"/*.c
    fi
    if [ -n "$manifest" ]; then
      manifest_tool
      "$tool" embed "$tmp" "$manifest" "$tmp"
    fi
    mv "$tmp" "$hit"
  fi
  case $out in
    "") ;;
    -) cat "$hit" ;;
    *) mkdir -p "$(dirname "$out")"; cp "$hit" "$out.tmp.$$" && mv "$out.tmp.$$" "$out" ;;
  esac
}

if [ $# -eq 2 ]; then
  build_one "$1" "$2"
  exit 0
elif [ $# -ne 0 ]; then
  echo "usage: $0 [SRC OUT]" >&2
  exit 2
fi

n=0
while IFS= read -r -d '' dir; do
  case $dir in
    */testdata/*) build_one "$dir" "" ;;
    *) build_one "$dir" "$dir.wasm" ; echo "build-wasm: ${dir#./}.wasm" ;;
  esac
  n=$((n + 1))
done < <(find ./plugins ./engine/plugin/testdata -type d \( -exec test -f '{}/main.go' \; -o -exec sh -c 'ls "$1"/*.c >/dev/null 2>&1' _ '{}' \; \) -print0 2>/dev/null | sort -z)
echo "build-wasm: $n guests up to date"
