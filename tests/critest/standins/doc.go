// Package standins holds the programs of critest's stand-in images
// (tests/critest_test.go builds them, static, into images pushed under the
// upstream names to a local registry): each does what critest's specs ask
// of the real program it stands for, nothing more.
//
//   - webserver: nginx and httpd (HTTP on a port, a pid file, nginx's
//     process title)
//   - pause: the sandbox's program (reaps children, exits on TERM/INT)
//   - nonewprivs: the setuid program of e2e-test-images/nonewprivs
//     (prints its effective uid)
//   - pgrep, ipcs: what Debian's dynamic busybox lacks of procps and
//     util-linux
package standins
