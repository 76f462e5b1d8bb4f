package cri

import (
	"os"
	"reflect"
	"testing"
)

func TestParseProcUser(t *testing.T) {
	good := "Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1001\t1000\t1000\nGroups:\t1000 1234 50000 \n"
	u, ok := parseProcUser([]byte(good))
	if !ok || u.Uid != 1000 || u.Gid != 1000 || !reflect.DeepEqual(u.SupplementalGroups, []int64{1000, 1234, 50000}) {
		t.Errorf("good: %v %v", u, ok)
	}
	if u, ok := parseProcUser([]byte("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n")); !ok || u.Uid != 0 || len(u.SupplementalGroups) != 0 {
		t.Errorf("no groups: %v %v", u, ok)
	}
	for _, bad := range []string{
		"",
		"Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n",         // no Groups
		"Uid:\tx\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t\n", // not a number
		"Uid:\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t\n",                // short line
		"Uid:\t99999999999\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n",            // over 32 bits
		"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 -2\n",                  // negative group
	} {
		if u, ok := parseProcUser([]byte(bad)); ok {
			t.Errorf("%q: parsed as %v", bad, u)
		}
	}
}

func TestProcessUserSelf(t *testing.T) {
	u := processUser(os.Getpid()).GetLinux()
	if u.Uid != int64(os.Getuid()) || u.Gid != int64(os.Getgid()) {
		t.Errorf("self: %v, want uid %d gid %d", u, os.Getuid(), os.Getgid())
	}
	for _, pid := range []int{0, -1, 1 << 30} {
		if u := processUser(pid).GetLinux(); u == nil || u.Uid != 0 || u.SupplementalGroups != nil {
			t.Errorf("pid %d: %v", pid, u)
		}
	}
}
