#!/bin/bash
# Runs the end-to-end suite (./tests/) inside a guest: builds ctrfs,
# ctrfs-shim and the test binary here, boots the guest with them on the 9p
# share (run.sh), runs the suite with CTRFS_REQUIRE_INTEGRATION=1 and -test.v,
# and exits with its status. The output is streamed and kept in
# $CTRFS_VM_OUT/e2e-CONFIG.log (default: a temp dir, printed at the end).
#
#   tests/vm/e2e.sh v2|v1 [go test flags, e.g. -test.run TestCheckpoint]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
config=${1:?usage: e2e.sh v2|v1 [test flags]}
shift
go=${GO:-go}

share=$(mktemp -d /tmp/ctrfs-vm-share-XXXXXX)
trap 'rm -rf "$share"' EXIT
(
	cd "$repo"
	CGO_ENABLED=0 "$go" build -o "$share/bin/" ./cmd/ctrfs ./cmd/ctrfs-shim ./cmd/ctrfs-cri
	CGO_ENABLED=0 "$go" test -c -o "$share/e2e.test" ./tests/
	# crictl for the CRI tests (the guest has no Go to fetch it with).
	CGO_ENABLED=0 GOBIN="$share/bin" "$go" install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0
)
{
	# Software emulation is several times slower: the waits are scaled.
	echo "export CTRFS_REQUIRE_INTEGRATION=1 CTRFS_TEST_IN_GUEST=1 CTRFS_TEST_BIN_DIR=/mnt/share/bin CTRFS_TEST_TIMEOUT_SCALE=${CTRFS_TEST_TIMEOUT_SCALE:-4}"
	echo 'export PATH=$PATH:/mnt/share/bin'
	echo 'cd /tmp'
	printf 'exec /mnt/share/e2e.test -test.v -test.count=1 -test.timeout=40m'
	printf ' %q' "$@"
	echo
} >"$share/cmd"

rc=0
"$here/run.sh" "$config" "$share" || rc=$?
out=${CTRFS_VM_OUT:-$(mktemp -d /tmp/ctrfs-vm-out-XXXXXX)}
mkdir -p "$out"
cp "$share/output" "$out/e2e-$config.log" 2>/dev/null || true
cp "$share/console.log" "$out/console-$config.log" 2>/dev/null || true
pass=$(grep -c -- '^--- PASS' "$out/e2e-$config.log" || true)
fail=$(grep -c -- '^--- FAIL' "$out/e2e-$config.log" || true)
skip=$(grep -c -- '^--- SKIP' "$out/e2e-$config.log" || true)
echo "vm: $config: exit $rc; top-level tests: $pass passed, $fail failed, $skip skipped; logs in $out" >&2
exit "$rc"
