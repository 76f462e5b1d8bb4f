// Command ctrfs-shim supervises one container process for the ctrfs
// daemon: `ctrfs-shim DIR`, DIR being the process's state directory, or
// `ctrfs-shim --wait`, a spare shim started ahead of need that reads DIR
// from stdin (see shim.WaitForDir).
package main

import (
	"fmt"
	"os"

	"github.com/ctrfs/ctrfs/shim"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs-shim DIR | ctrfs-shim --wait")
		os.Exit(2)
	}
	if os.Args[1] == "--wait" {
		os.Exit(shim.Spare(os.Stdin))
	}
	os.Exit(shim.Main(os.Args[1]))
}
