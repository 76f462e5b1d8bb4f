#!/bin/bash
# Runs session-guest.sh in a guest: the session of a user trying ctrfs by
# hand (run, pause, stats, update, OOM, checkpoint, restore, a checkpoint of
# the restored container, delete), each command printed before its output.
#
#   tests/vm/session.sh v2|v1 > session.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
config=${1:?usage: session.sh v2|v1}
go=${GO:-go}
share=$(mktemp -d /tmp/ctrfs-vm-share-XXXXXX)
trap 'rm -rf "$share"' EXIT
(cd "$repo" && CGO_ENABLED=0 "$go" build -o "$share/bin/" ./cmd/ctrfs ./cmd/ctrfs-shim ./tests/mkbundle)
cp "$here/session-guest.sh" "$share/session-guest.sh"
cat >"$share/cmd" <<'CMD'
export PATH=/mnt/share/bin:$PATH
cd /root
exec sh /mnt/share/session-guest.sh
CMD
"$here/run.sh" "$config" "$share" >/dev/null
cat "$share/output"
