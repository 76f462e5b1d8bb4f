// Command ctrfs-shim supervises one container process for the ctrfs
// daemon: `ctrfs-shim DIR`, DIR being the process's state directory.
package main

import (
	"fmt"
	"os"

	"github.com/ctrfs/ctrfs/shim"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: ctrfs-shim DIR")
		os.Exit(2)
	}
	os.Exit(shim.Main(os.Args[1]))
}
