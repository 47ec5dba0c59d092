#!/usr/bin/env bash
# The whole test suite, set-up included: installs the tools the tests drive
# (etcd for the fleet tests, the AWS CLI, openssl, iproute2 for the network
# namespace tests, curl, systemd-analyze for the unit files), checks
# formatting, vet and staticcheck, runs every test under the race detector,
# the allocation tests without it (the race detector allocates), then a short
# run of each fuzz target. Every step sets the build tag integration: the
# tests that need root, network namespaces or the tools above sit behind it,
# so that a plain `go test ./...` stays hermetic and this script still runs
# them all.
#
#   ./scripts/test.sh            everything (what CI runs)
#   FUZZTIME=0 ./scripts/test.sh skip the fuzz smoke
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
[ -x /usr/bin/aws ] || need+=(awscli)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v cloud-init >/dev/null 2>&1 || need+=(cloud-init)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
[ -r /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "== installing ${need[*]}"
  apt-get update -qq
  # Start no service while installing (docker.io would start a
  # machine-wide dockerd): the Docker tests start their own, in a namespace.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet -tags integration ./...

echo "== staticcheck"
go tool staticcheck -tags integration ./...

# The Terraform provider's acceptance tests drive a real OpenTofu, built
# once from the Go module proxy and cached (see scripts/build-tofu.sh).
echo "== OpenTofu for the provider acceptance tests"
TF_ACC_TERRAFORM_PATH=$(./scripts/build-tofu.sh)
export TF_ACC=1 TF_ACC_TERRAFORM_PATH TF_ACC_PROVIDER_NAMESPACE=frontdesk-imds TF_ACC_PROVIDER_HOST=registry.opentofu.org

echo "== go test -race"
# The daemon-level tests (cmd/frontdesk) run after the others, not beside
# them: a few compare latencies within one run (a flooding guest against
# its neighbour), and two cores shared with other test binaries would
# measure the machine instead.
go test -tags integration -race -count=1 -timeout 20m $(go list -tags integration ./... | grep -v '/cmd/frontdesk$')
go test -tags integration -race -count=1 -timeout 20m ./cmd/frontdesk

echo "== allocation tests (without -race)"
go test -tags integration -count=1 -run 'DoesNotAllocate' ./...

# A count, not a duration: a duration's deadline sometimes ends a healthy
# run with "context deadline exceeded" (a known flake of go test -fuzz).
fuzztime=${FUZZTIME:-100000x}
if [ "$fuzztime" != "0" ]; then
  echo "== fuzz smoke ($fuzztime each)"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "-- $pkg $target"
      if ! out=$(go test -tags integration -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
        echo "$out"; exit 1
      fi
    done
  done
fi
echo "== all checks passed"
