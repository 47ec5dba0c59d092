#!/usr/bin/env bash
# Builds the frontdesk image from a static binary built here: no base image
# is pulled. Usage: deploy/container/build.sh [TAG]   (default frontdesk:latest)
#   DOCKER_HOST          the daemon to build with (docker's default otherwise)
#   CONTAINER_ENGINE     docker (default) or podman
#   CA_BUNDLE            CA certificates to put in the image
#                        (default /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-frontdesk:latest}
engine=${CONTAINER_ENGINE:-docker}
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$ca" ] || { echo "build.sh: no CA bundle at $ca (install ca-certificates or set CA_BUNDLE)" >&2; exit 1; }

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$ctx/frontdesk" ./cmd/frontdesk
cp "$ca" "$ctx/ca-certificates.crt"
mkdir "$ctx/state"
"$engine" build -q -f deploy/container/Containerfile -t "$tag" "$ctx"
