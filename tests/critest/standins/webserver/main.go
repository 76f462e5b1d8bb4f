// Command webserver stands in for nginx and httpd in critest's images: it
// serves a page over HTTP on -port, writes its pid to -pid-file, logs a
// line on start, and, given -title, takes it as its process title as nginx
// does ("nginx: master process ..." in /proc/PID/cmdline), by executing
// itself again with that argv[0]. TERM, INT and QUIT stop it (as PID 1 of a
// container it gets no default signal handling).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
)

func main() {
	port := flag.Int("port", 80, "the TCP port to serve HTTP on (all addresses)")
	pidFile := flag.String("pid-file", "", "a file to write the pid to")
	title := flag.String("title", "", "the process title (argv[0]) to run under")
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	name := filepath.Base(exe)
	if *title != "" && os.Args[0] != *title {
		// Executing the file by its path keeps comm (pidof's match) the
		// program's name.
		log.Fatal(syscall.Exec(exe, append([]string{*title}, os.Args[1:]...), os.Environ()))
	}
	l, err := net.Listen("tcp", ":"+strconv.Itoa(*port))
	if err != nil {
		log.Fatal(err)
	}
	if *pidFile != "" {
		if err := os.MkdirAll(filepath.Dir(*pidFile), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(*pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT)
	go func() {
		s := <-sig
		fmt.Printf("%s: %v, exiting\n", name, s)
		if *pidFile != "" {
			os.Remove(*pidFile)
		}
		os.Exit(0)
	}()
	fmt.Printf("%s: serving HTTP on %s\n", name, l.Addr())
	page := fmt.Sprintf("<html><body><h1>Welcome to %s!</h1></body></html>\n", name)
	log.Fatal(http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, page)
	})))
}
