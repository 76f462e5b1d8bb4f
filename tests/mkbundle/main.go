// Command mkbundle makes the demo OCI bundle: a busybox root filesystem whose
// init prints the date every second and exits 143 on SIGTERM.
//
//	go run ./tests/mkbundle DIR
//
// It does nothing when DIR/config.json exists already.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ctrfs/ctrfs/tests/bundle"
)

// DemoScript is the demo container's init. A container's init is pid 1 in
// its pid namespace, and the kernel drops signals pid 1 has no handler for,
// so the trap is what makes `kill TERM` end it (with the shell's 128+15).
// `sleep & wait` lets the trap run at once instead of after the sleep.
const DemoScript = `trap "exit 143" TERM; while :; do date; sleep 1 & wait $!; done`

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkbundle DIR")
		os.Exit(2)
	}
	dir, err := filepath.Abs(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		fmt.Printf("mkbundle: %s exists already\n", filepath.Join(dir, "config.json"))
		return
	}
	if err := bundle.Busybox(dir, "sh", "-c", DemoScript); err != nil {
		fmt.Fprintln(os.Stderr, "mkbundle:", err)
		os.Exit(1)
	}
	fmt.Printf("mkbundle: made %s\n", dir)
}
