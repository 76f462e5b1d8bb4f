#!/bin/sh
# A session by hand, as a new user would type it, run in a guest by
# session.sh: run, pause, stats, update, OOM, checkpoint, restore, a
# checkpoint of the restored container, restore again, delete. Each line
# below SESSION is printed ("$ ...") and run; nothing here asserts: read it.
cd /root
mkbundle /tmp/b >/dev/null
mkdir -p /tmp/m
ctrfs mount --state-dir /run/ctrfs /tmp/m 2>/tmp/ctrfs.log &
daemon=$!
while ! mountpoint -q /tmp/m; do sleep 0.2; done
cat /tmp/m/events >/tmp/events.log &
reader=$!

# Two helpers the session uses, shown first:
cg() { echo "/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$(cat /tmp/m/$1/pid)/cgroup)"; }
out() { dd if=/tmp/m/$1/processes/init/stdout iflag=nonblock status=none 2>/dev/null | tail -${2:-2}; }
echo '# cg ID: the cgroup directory of the container'"'"'s init, from /proc/PID/cgroup'
echo "cg() { echo \"/sys/fs/cgroup\$(sed -n 's/^0:://p' /proc/\$(cat /tmp/m/\$1/pid)/cgroup)\"; }"
echo '# out ID [N]: the last N lines init printed (stdout follows a running process: read without blocking)'
echo 'out() { dd if=/tmp/m/$1/processes/init/stdout iflag=nonblock status=none 2>/dev/null | tail -${2:-2}; }'
echo

while IFS= read -r line; do
	case $line in
	'#'*) echo "$line"; continue ;;
	esac
	printf '$ %s\n' "$line"
	eval "$line" </dev/null 2>&1
	rc=$?
	[ "$rc" = 0 ] || echo "(exit $rc)"
done <<'SESSION'
uname -r; grep cgroup /proc/mounts; runc --version | head -1; criu --version | head -1
echo 'run demo /tmp/b' > /tmp/m/ctl
ls /tmp/m; cat /tmp/m/demo/state /tmp/m/demo/pids
cat /proc/$(cat /tmp/m/demo/pid)/cgroup
echo pause > /tmp/m/demo/ctl; cat /tmp/m/demo/state; grep frozen $(cg demo)/cgroup.events
echo resume > /tmp/m/demo/ctl; cat /tmp/m/demo/state; grep frozen $(cg demo)/cgroup.events
cat /tmp/m/demo/stats
echo 'update memory=64M pids=50' > /tmp/m/demo/ctl; cat $(cg demo)/memory.max $(cg demo)/pids.max
# a typo: 4096 bytes, far below what the container uses
echo 'update memory=4096' > /tmp/m/demo/ctl || cat /tmp/m/demo/ctl; cat $(cg demo)/memory.max
# OOM: a 16 MiB limit, then a 64 MiB buffer
echo 'update memory=16M' > /tmp/m/demo/ctl; cat /tmp/m/demo/oom
echo 'exec hog dd if=/dev/zero of=/dev/null bs=64M count=1' > /tmp/m/demo/ctl; cat /tmp/m/demo/processes/hog/wait; cat /tmp/m/demo/oom /tmp/m/demo/state
grep oom $(cg demo)/memory.events
echo 'update memory=max' > /tmp/m/demo/ctl; out demo
echo 'checkpoint cp1 --exit' > /tmp/m/demo/ctl; cat /tmp/m/demo/state; ls /tmp/m/demo/checkpoints
echo 'create demo2 /tmp/b --checkpoint cp1' > /tmp/m/ctl; cat /tmp/m/demo2/state /tmp/m/demo2/pids
cat /proc/$(cat /tmp/m/demo2/pid)/cgroup; ls -d /sys/fs/cgroup/demo*
sleep 2; out demo2
echo pause > /tmp/m/demo2/ctl; cat /tmp/m/demo2/state; grep frozen $(cg demo2)/cgroup.events; a=$(out demo2 1); sleep 2; [ "$(out demo2 1)" = "$a" ] && echo "no new line while paused: $a"
echo resume > /tmp/m/demo2/ctl; cat /tmp/m/demo2/state; grep frozen $(cg demo2)/cgroup.events
cat /tmp/m/demo2/stats
echo 'update memory=32M' > /tmp/m/demo2/ctl; cat $(cg demo2)/memory.max
echo 'checkpoint cp2 --exit' > /tmp/m/demo2/ctl || cat /tmp/m/demo2/ctl; cat /tmp/m/demo2/state; ls /tmp/m/demo2/checkpoints
echo 'run demo3 /tmp/b --checkpoint cp2' > /tmp/m/ctl; cat /tmp/m/demo3/state; cat /proc/$(cat /tmp/m/demo3/pid)/cgroup; ls -d /sys/fs/cgroup/demo*
sleep 2; out demo3
echo 'delete --force' > /tmp/m/demo3/ctl; rmdir /tmp/m/demo /tmp/m/demo2; ls /tmp/m; ls -d /sys/fs/cgroup/demo* || echo "no demo cgroup left"
cat /tmp/events.log
SESSION
kill $reader $daemon
wait
