package main

import (
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/ctrfs/ctrfs/images"
)

// imageFlags defines the image store's flags on fs; the options are filled
// in as fs parses.
func imageFlags(fs *flag.FlagSet) *images.Options {
	o := &images.Options{Mirrors: map[string][]string{}}
	fs.StringVar(&o.AuthFile, "registry-auth", "", "docker-style config.json with registry credentials (its \"auths\")")
	fs.Func("insecure-registry", "registry HOST[:PORT] spoken to over plain HTTP (repeatable)", func(v string) error {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return fmt.Errorf("want HOST[:PORT], not %q", v)
		}
		o.Insecure = append(o.Insecure, v)
		return nil
	})
	fs.Func("registry-mirror", "HOST=URL: try the mirror URL before registry HOST, same repository paths (repeatable, in order)", func(v string) error {
		host, u, ok := strings.Cut(v, "=")
		if !ok || host == "" {
			return fmt.Errorf("want HOST=URL, not %q", v)
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("%q: the mirror must be an http:// or https:// URL", v)
		}
		o.Mirrors[host] = append(o.Mirrors[host], u)
		return nil
	})
	fs.Int64Var(&o.Limits.LayerBytes, "max-layer-size", images.DefaultLayerBytes, "bytes of file data one layer may unpack to")
	fs.Int64Var(&o.Limits.ImageBytes, "max-image-size", images.DefaultImageBytes, "bytes of file data an image's layers may unpack to")
	return o
}
