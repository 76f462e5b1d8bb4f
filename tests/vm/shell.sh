#!/bin/bash
# An interactive shell in a guest, with ctrfs, ctrfs-shim and mkbundle built
# from this tree in $PATH (/mnt/share/bin), for trying things by hand:
#
#   tests/vm/shell.sh v2     # then, in the guest:
#   mkbundle /tmp/b && mkdir /tmp/m && ctrfs mount --state-dir /run/ctrfs /tmp/m &
#   echo 'run demo /tmp/b' > /tmp/m/ctl; cat /tmp/m/demo/stats
#
# `exit` powers the guest off (Ctrl-A X kills QEMU). The disk is a snapshot:
# nothing is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
config=${1:?usage: shell.sh v2|v1}
go=${GO:-go}
share=$(mktemp -d /tmp/ctrfs-vm-share-XXXXXX)
trap 'rm -rf "$share"' EXIT
(cd "$repo" && CGO_ENABLED=0 "$go" build -o "$share/bin/" ./cmd/ctrfs ./cmd/ctrfs-shim ./tests/mkbundle)
cat >"$share/cmd" <<'CMD'
export PATH=/mnt/share/bin:$PATH
cd /root
exec bash -i
CMD
CTRFS_VM_INTERACTIVE=1 "$here/run.sh" "$config" "$share"
