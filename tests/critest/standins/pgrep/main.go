// Command pgrep is the part of procps' pgrep critest uses (`pgrep NAME`):
// it prints the pids of the processes whose name (comm) matches the
// extended regular expression NAME, and exits 1 when there is none.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: pgrep PATTERN (no options in this stand-in)")
		os.Exit(2)
	}
	re, err := regexp.Compile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgrep:", err)
		os.Exit(2)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err == nil && re.MatchString(strings.TrimSuffix(string(comm), "\n")) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		os.Exit(1)
	}
	sort.Ints(pids)
	for _, p := range pids {
		fmt.Println(p)
	}
}
