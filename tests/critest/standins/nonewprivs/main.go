// Command nonewprivs stands in for the program of
// registry.k8s.io/e2e-test-images/nonewprivs: installed setuid root, it
// prints the effective uid it runs with, which is 0 unless the container's
// no_new_privs kept the kernel from honouring the setuid bit.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}
