package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// systemd's readiness protocol (sd_notify(3)), for a Type=notify service:
// a datagram of NAME=VALUE lines sent to the unix socket named by
// $NOTIFY_SOCKET, an abstract one when the name starts with '@'. A dozen
// lines, so no go-systemd dependency.

// notifySocket is $NOTIFY_SOCKET as the daemon was started with it. It is
// taken out of the environment before main runs: runc, started by the shims
// with the daemon's environment, would otherwise see it and take it for
// its own (runc proxies $NOTIFY_SOCKET into the container and makes
// `start` wait for the container's READY=1), and no container must ever
// speak for the daemon to systemd.
var notifySocket = takeEnv("NOTIFY_SOCKET")

func takeEnv(name string) string {
	v := os.Getenv(name)
	os.Unsetenv(name)
	return v
}

// servingTimeout bounds the readiness check.
const servingTimeout = time.Minute

// notifyReady tells systemd the daemon is ready once mnt serves requests:
// a child (`ctrfs serving MNT`) looks a file up through the mount, and
// READY=1 goes once it has its answer. The look-up is done by a process
// apart for the reason the poker is one (poker.go): a thread of the daemon
// waiting on its own mount could leave it unkillable. Without
// $NOTIFY_SOCKET it does nothing.
func notifyReady(mnt string, log logrus.FieldLogger) {
	if notifySocket == "" {
		return
	}
	if err := checkServing(mnt); err != nil {
		// No READY=1: systemd fails the start at its TimeoutStartSec
		// and, with Restart=on-failure, starts the daemon again.
		log.WithError(err).Error("the mount does not serve; not telling systemd it is ready")
		return
	}
	if err := sdNotify("READY=1\nSTATUS=serving " + mnt); err != nil {
		log.WithError(err).Warn("sd_notify READY=1")
	}
}

// notifyStopping tells systemd the daemon is stopping.
func notifyStopping(log logrus.FieldLogger) {
	if err := sdNotify("STOPPING=1"); err != nil {
		log.WithError(err).Warn("sd_notify STOPPING=1")
	}
}

// sdNotify sends one notification to $NOTIFY_SOCKET, if there was one.
func sdNotify(state string) error {
	if notifySocket == "" {
		return nil
	}
	// Go's unix addresses read a leading '@' as the abstract namespace,
	// as sd_notify does.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: notifySocket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// checkServing runs `ctrfs serving MNT` and returns its complaint, if any.
func checkServing(mnt string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), servingTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "serving", mnt)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s serving %s: %v: %s", self, mnt, err, out)
	}
	return nil
}

// fuseSuperMagic is a FUSE file system's f_type in statfs(2).
const fuseSuperMagic = 0x65735546

// servingMain is `ctrfs serving MOUNTPOINT`: it exits 0 once a ctrfs mount
// at MOUNTPOINT answers a look-up (of its version file), 1 if it cannot.
func servingMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs serving MOUNTPOINT")
		return 2
	}
	mnt := args[0]
	err := func() error {
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			return err
		}
		if st.Type != fuseSuperMagic {
			return errors.New("not a FUSE mount")
		}
		var s unix.Stat_t
		return unix.Stat(filepath.Join(mnt, "version"), &s)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ctrfs serving:", mnt+":", err)
		return 1
	}
	return 0
}
