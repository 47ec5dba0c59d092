#!/usr/bin/env bash
# Builds the OpenTofu CLI that the Terraform provider's acceptance tests
# drive, from the Go module proxy, once: the binary is cached under
# ${XDG_CACHE_HOME:-$HOME/.cache}/frontdesk/tofu-<version>/tofu and later runs
# reuse it. Prints the binary's path on stdout.
#
# OpenTofu's go.mod has replace directives, which `go install pkg@version`
# refuses, so the module is downloaded into the module cache and built from
# a writable copy of it.
set -euo pipefail

version=${TOFU_VERSION:-v1.12.6}
dir="${XDG_CACHE_HOME:-$HOME/.cache}/frontdesk/tofu-$version"
bin="$dir/tofu"
if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# Outside any module, so this repository's go.mod plays no part.
src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/opentofu/opentofu@$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
  echo "build-tofu.sh: could not download github.com/opentofu/opentofu@$version" >&2
  exit 1
fi
cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
start=$(date +%s)
(cd "$work/src" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$bin.tmp" ./cmd/tofu) >&2
mv "$bin.tmp" "$bin"
echo "build-tofu.sh: built tofu $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
