#!/bin/sh
# Installs what ctrfs and its tests need, if missing: runc (the OCI runtime),
# fuse3 (fusermount3), busybox-static (root filesystems for test containers),
# inotify-tools (inotifywait, used by the watching tests), criu (runc checkpoints
# and restores with it; on kernels it does not support, such as Linux 6.18 for
# Debian's criu 3.17, it fails, and the tests then check that failure's message),
# and for the guest suites (tests/vm): qemu-system-x86 and debootstrap.
set -e
missing=""
vm=""
command -v runc >/dev/null 2>&1 || missing="$missing runc"
command -v fusermount3 >/dev/null 2>&1 || missing="$missing fuse3"
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || missing="$missing busybox-static"
command -v inotifywait >/dev/null 2>&1 || missing="$missing inotify-tools"
command -v criu >/dev/null 2>&1 || [ -x /usr/sbin/criu ] || missing="$missing criu"
# docker-registry: a real registry the images tests pull from.
[ -x /usr/bin/docker-registry ] || missing="$missing docker-registry"
# containernetworking-plugins: CNI plugins (bridge, host-local, ...) for the CRI's pod networks.
[ -x /usr/lib/cni/bridge ] || missing="$missing containernetworking-plugins"

command -v qemu-system-x86_64 >/dev/null 2>&1 || vm="$vm qemu-system-x86"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || vm="$vm debootstrap"
[ -z "$missing$vm" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing:$missing$vm; run as root or: sudo apt-get install -y$missing$vm" >&2
	exit 0
fi
echo "deps: installing$missing$vm" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
[ -z "$missing" ] || apt-get install -y -qq $missing
# QEMU's recommends (firmware, display and audio libraries) are of no use here.
[ -z "$vm" ] || apt-get install -y -qq --no-install-recommends $vm
