#!/bin/bash
# Boots the guest image under QEMU (software emulation) and runs SHARE/cmd in
# it, with SHARE as a 9p share on /mnt/share (cwd of cmd). Streams cmd's
# output, leaves the serial console in SHARE/console.log, and exits with cmd's
# exit status (or 1 when the guest did not report one: boot failure, timeout).
#
#   tests/vm/run.sh v2|v1 SHARE
#   v2: cgroup v2 only (cgroup_no_v1=all); v1: one v1 hierarchy per controller.
#   CTRFS_VM_TIMEOUT  seconds for the whole boot, run and power-off (default 3600)
#   CTRFS_VM_INTERACTIVE=1  cmd runs on the serial console, which is this
#                     terminal (shell.sh); Ctrl-A X quits QEMU
#   CTRFS_VM_CACHE    where the image is cached (see build-image.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
config=${1:?usage: run.sh v2|v1 SHARE}
share=$(cd "${2:?usage: run.sh v2|v1 SHARE}" && pwd)
timeout=${CTRFS_VM_TIMEOUT:-3600}
case $config in
v2) cgroup=cgroup_no_v1=all ;;
v1) cgroup= ;;
*) echo "vm: unknown configuration $config (v2 or v1)" >&2; exit 2 ;;
esac
[ -f "$share/cmd" ] || { echo "vm: no $share/cmd" >&2; exit 2; }
command -v qemu-system-x86_64 >/dev/null || { echo "vm: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }

image=$("$here/build-image.sh")
cp "$here/guest-init" "$share/guest-init"
rm -f "$share/status" "$share/output" "$share/console.log" "$share/interactive"
: >"$share/output"

serial=file:$share/console.log
tailpid=
bound=(timeout -k 10 "$timeout")
if [ "${CTRFS_VM_INTERACTIVE:-}" = 1 ]; then
	: >"$share/interactive"
	serial=mon:stdio
	bound=() # timeout would put QEMU in a background process group, off the terminal
else
	tail -n +1 -F "$share/output" 2>/dev/null &
	tailpid=$!
fi
start=$(date +%s)
# /dev/kvm here is a paravirtual KVM that cannot boot Debian's kernels: TCG.
# snapshot=on: the guest's writes go to a temporary overlay, every run starts clean.
rc=0
"${bound[@]}" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
	-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
	-append "console=ttyS0 root=/dev/vda rw init=/sbin/ctrfs-vm-init panic=-1 loglevel=4 $cgroup" \
	-drive "file=$image/root.img,format=raw,if=virtio,snapshot=on" \
	-virtfs "local,path=$share,mount_tag=share,security_model=none,id=share" \
	-device virtio-rng-pci \
	-nographic -no-reboot -monitor none -serial "$serial" || rc=$?
if [ -n "$tailpid" ]; then
	sleep 0.5
	kill "$tailpid" 2>/dev/null || true
	wait "$tailpid" 2>/dev/null || true
fi
echo "vm: $config guest ran $(($(date +%s) - start)) s" >&2
if [ "$rc" = 124 ]; then
	echo "vm: $config guest timed out after $timeout s; console tail:" >&2
	tail -40 "$share/console.log" >&2
	exit 1
fi
if [ ! -s "$share/status" ]; then
	echo "vm: $config guest reported no exit status (qemu exit $rc); console tail:" >&2
	tail -40 "$share/console.log" >&2
	exit 1
fi
exit "$(cat "$share/status")"
