package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sdNotify reaches a socket by path and an abstract one ('@'), and does
// nothing without one.
func TestSdNotify(t *testing.T) {
	defer func(old string) { notifySocket = old }(notifySocket)
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@ctrfs-unit-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		notifySocket = name
		if err := sdNotify("READY=1"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		buf := make([]byte, 64)
		sock.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := sock.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1" {
			t.Errorf("%s: got %q, %v; want READY=1", name, buf[:n], err)
		}
		sock.Close()
	}
	notifySocket = ""
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without a socket: %v", err)
	}
}

func TestTakeEnv(t *testing.T) {
	t.Setenv("CTRFS_TEST_TAKE", "x")
	if v := takeEnv("CTRFS_TEST_TAKE"); v != "x" {
		t.Errorf("takeEnv = %q", v)
	}
	if _, ok := os.LookupEnv("CTRFS_TEST_TAKE"); ok {
		t.Error("takeEnv left the variable in the environment")
	}
}
