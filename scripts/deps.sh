#!/bin/sh
# Installs what ctrfs and its tests need, if missing: runc (the OCI runtime),
# fuse3 (fusermount3), busybox-static (root filesystems for test containers),
# inotify-tools (inotifywait, used by the watching tests), criu (runc checkpoints
# and restores with it; on kernels it does not support, such as Linux 6.18 for
# Debian's criu 3.17, it fails, and the tests then check that failure's message).
set -e
missing=""
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v fusermount3 >/dev/null 2>&1 || missing="$missing fuse3"
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || missing="$missing busybox-static"
command -v inotifywait >/dev/null 2>&1 || missing="$missing inotify-tools"
command -v criu >/dev/null 2>&1 || [ -x /usr/sbin/criu ] || missing="$missing criu"
# docker-registry: a real registry the images tests pull from.
[ -x /usr/bin/docker-registry ] || missing="$missing docker-registry"
# containernetworking-plugins: CNI plugins (bridge, host-local, ...) for the CRI's pod networks.
[ -x /usr/lib/cni/bridge ] || missing="$missing containernetworking-plugins"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing:$missing; run as root or: sudo apt-get install -y$missing" >&2
	exit 0
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing
