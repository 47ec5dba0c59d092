#!/usr/bin/env bash
# The whole test suite, set-up included: installs the tools the tests drive
# (etcd for the fleet tests, the AWS CLI, openssl, iproute2 for the network
# namespace tests, curl, systemd-analyze for the unit files), checks
# formatting, vet and staticcheck, runs every test under the race detector,
# the allocation tests without it (the race detector allocates), then a short
# run of each fuzz target.
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
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
    exit 1
  fi
  echo "== installing ${need[*]}"
  apt-get update -qq
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

echo "== go test -race"
# The daemon-level tests (cmd/frontdesk) run after the others, not beside
# them: a few compare latencies within one run (a flooding guest against
# its neighbour), and two cores shared with other test binaries would
# measure the machine instead.
go test -tags integration -race -count=1 -timeout 20m $(go list ./... | grep -v '/cmd/frontdesk$')
go test -tags integration -race -count=1 -timeout 20m ./cmd/frontdesk

echo "== allocation tests (without -race)"
go test -count=1 -run 'DoesNotAllocate' ./...

# A count, not a duration: a duration's deadline sometimes ends a healthy
# run with "context deadline exceeded" (a known flake of go test -fuzz).
fuzztime=${FUZZTIME:-100000x}
if [ "$fuzztime" != "0" ]; then
  echo "== fuzz smoke ($fuzztime each)"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
      echo "-- $pkg $target"
      if ! out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
        echo "$out"; exit 1
      fi
    done
  done
fi
echo "== all checks passed"
