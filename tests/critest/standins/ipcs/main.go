// Command ipcs is the part of util-linux's ipcs critest uses (`ipcs -m`):
// the System V shared memory segments of the caller's IPC namespace, read
// from /proc/sysvipc/shm, in ipcs's table layout.
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) > 2 || (len(os.Args) == 2 && os.Args[1] != "-m") {
		fmt.Fprintln(os.Stderr, "usage: ipcs [-m] (shared memory only in this stand-in)")
		os.Exit(2)
	}
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ipcs:", err)
		os.Exit(1)
	}
	defer f.Close()
	fmt.Println()
	fmt.Println("------ Shared Memory Segments --------")
	fmt.Printf("%-10s %-10s %-10s %-10s %-10s %-10s %-12s\n", "key", "shmid", "owner", "perms", "bytes", "nattch", "status")
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		// key shmid perms size cpid lpid nattch uid gid ...
		fl := strings.Fields(sc.Text())
		if len(fl) < 9 {
			continue
		}
		key, _ := strconv.ParseInt(fl[0], 10, 64)
		perms, _ := strconv.ParseInt(fl[2], 10, 64)
		owner := fl[7]
		if u, err := user.LookupId(fl[7]); err == nil {
			owner = u.Username
		}
		fmt.Printf("0x%08x %-10s %-10s %-10o %-10s %-10s\n", uint32(key), fl[1], owner, perms&0o777, fl[3], fl[6])
	}
	fmt.Println()
}
