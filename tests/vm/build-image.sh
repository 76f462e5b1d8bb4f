#!/bin/bash
# Builds the guest image of the VM test suite from Debian's packages, unless
# it is already in the cache, and prints the directory that holds it:
#   DIR/vmlinuz DIR/initrd.img DIR/root.img (ext4, raw)
# The cache key is a hash of this script and the package list, so a change to
# either builds a new image (older ones are removed). The image's init is only
# a stub that mounts the 9p share and runs the share's guest-init (copied there
# by run.sh from this directory on every boot), so changing that rebuilds nothing.
#
#   CTRFS_VM_CACHE   cache directory (default /var/cache/ctrfs-vm)
#   CTRFS_VM_MIRROR  Debian mirror (default: the one apt uses here)
# Needs root (debootstrap chroots), debootstrap and mkfs.ext4; no loop device
# and no mount: mkfs.ext4 -d fills the file system from the tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${CTRFS_VM_CACHE:-/var/cache/ctrfs-vm}
suite=bookworm

key=$(cat "$here/build-image.sh" "$here/packages" | sha256sum | cut -c1-16)
out=$cache/$suite-$key
have() { [ -f "$out/root.img" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ]; }
if have; then
	echo "$out"
	exit 0
fi
mkdir -p "$cache"
# One build at a time; a second caller waits and takes the first one's image.
exec 9>"$cache/.lock"
flock 9
if have; then
	echo "$out"
	exit 0
fi

for t in debootstrap mkfs.ext4; do
	command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || {
		echo "vm: $t is missing (apt-get install debootstrap e2fsprogs)" >&2
		exit 1
	}
done
[ "$(id -u)" = 0 ] || { echo "vm: building the image needs root (debootstrap)" >&2; exit 1; }

mirror=${CTRFS_VM_MIRROR:-}
if [ -z "$mirror" ]; then
	# The first Debian (non-security) mirror of apt's sources on this machine.
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
		grep -Eo 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
	mirror=${mirror:-http://deb.debian.org/debian}
fi

work=$(mktemp -d "$cache/build-XXXXXX")
cleanup() {
	# debootstrap mounts proc and sys in the tree: never remove through them.
	awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r umount -l
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
include=$(grep -Ev '^\s*(#|$)' "$here/packages" | paste -sd, -)
echo "vm: debootstrap $suite from $mirror into $work (cache key $key)" >&2
start=$(date +%s)
debootstrap --variant=minbase --include="$include" "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -30 "$work/debootstrap.log" >&2
	exit 1
}
echo "vm: debootstrap took $(($(date +%s) - start)) s" >&2

root=$work/root
cat >"$root/sbin/ctrfs-vm-init" <<'STUB'
#!/bin/sh
# init of the VM test guest: tini as PID 1 (it reaps the orphans the tests
# leave), under it the share's guest-init (tests/vm/guest-init of the tree).
if [ $$ = 1 ]; then
	exec /usr/bin/tini -- /sbin/ctrfs-vm-init "$@"
fi
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
/sbin/modprobe 9pnet_virtio
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 share /mnt/share; then
	exec /bin/sh /mnt/share/guest-init
fi
echo "ctrfs-vm-init: cannot mount the 9p share" >/dev/console
echo o >/proc/sysrq-trigger
STUB
chmod 0755 "$root/sbin/ctrfs-vm-init"
mkdir -p "$root/mnt/share"
echo ctrfs-vm >"$root/etc/hostname"
: >"$root/etc/fstab"
# Nothing in the guest needs the package caches or the docs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man

mkdir -p "$work/out"
cp "$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)" "$work/out/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)" "$work/out/initrd.img"
# Room for the tests' own files beside the system (sparse on the host).
size=$(( $(du -smx "$root" | cut -f1) + 1536 ))
mkfs.ext4 -q -F -L ctrfs-vm -d "$root" "$work/out/root.img" "${size}M" >&2 # stdout is the answer

rm -rf "$out"
mv "$work/out" "$out"
# Older images (other keys) are of no further use.
for old in "$cache/$suite"-*; do
	[ "$old" = "$out" ] || rm -rf "$old"
done
echo "vm: image built in $(($(date +%s) - start)) s: $out" >&2
echo "$out"
