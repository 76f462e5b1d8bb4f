package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// PullOptions are one pull's options.
type PullOptions struct {
	// AuthFile, if set, is this pull's docker-style config.json (its
	// "auths"), used instead of the store's (checked by CheckPullAuthFile).
	AuthFile string
	// Progress, if set, is called with the compressed bytes fetched so far
	// and the total, at most every 200 ms and once at the end.
	Progress func(done, total int64)
}

// endpoint is one place to pull a reference from: a mirror or the registry.
type endpoint struct {
	ref    name.Reference
	mirror string // "" for the registry itself
}

// Pull fetches ref from its registry (through its mirrors first, if any) for
// the store's platform, stores and unpacks it, and records ref as naming it
// (the upstream name, even when a mirror served it).
func (s *Store) Pull(ctx context.Context, ref string, opts PullOptions) (*Image, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	plat, err := s.platform()
	if err != nil {
		return nil, err
	}
	eps, err := s.endpoints(r)
	if err != nil {
		return nil, err
	}
	// A bad auth file is the daemon's setup, not a registry's: said as is,
	// and before any request.
	kc, err := s.keychain(ctx, opts.AuthFile)
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, ep := range eps {
		im, err := s.pullFrom(ctx, r, ep, plat, kc, opts)
		if err == nil {
			return im, nil
		}
		// What the image itself is wrong about (unsafe, too big, bad
		// content) is not the mirror's fault: no fallback.
		if ctx.Err() != nil || errors.Is(err, ErrUnsafe) || errors.Is(err, ErrTooBig) {
			return nil, err
		}
		where := "registry"
		if ep.mirror != "" {
			where = "mirror " + ep.mirror
		}
		errs = append(errs, where+": "+s.authHint(err, ep, kc)+err.Error())
	}
	return nil, errorf(ErrRegistry, "pull %s: %s", r, strings.Join(errs, "; "))
}

func (s *Store) pullFrom(ctx context.Context, r Ref, ep endpoint, plat *v1.Platform, kc fileKeychain, opts PullOptions) (*Image, error) {
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithPlatform(*plat),
		remote.WithAuthFromKeychain(kc),
		remote.WithTransport(&httpGuard{allowed: s.plainHTTPHosts(), next: remote.DefaultTransport}),
		remote.WithUserAgent("ctrfs"),
	}
	desc, err := remote.Get(ep.ref, ropts...)
	if err != nil {
		return nil, err
	}
	if desc.Size > s.limits.JSONBytes {
		return nil, errorf(ErrTooBig, "manifest larger than %d bytes", s.limits.JSONBytes)
	}
	// Image resolves an index to the manifest for plat.
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	return s.ingest(ctx, img, r.String(), opts.Progress)
}

// authHint is, for a registry's 401 or 403, which credentials were sent:
// "unauthorized" alone tells nobody whether the auth file is missing, lacks
// the host, or holds a wrong password.
func (s *Store) authHint(err error, ep endpoint, kc fileKeychain) string {
	var te *transport.Error
	if !errors.As(err, &te) || (te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden) {
		return ""
	}
	host := ep.ref.Context().RegistryStr()
	switch {
	case kc.file == nil:
		return "unauthorized (no registry auth file given): "
	case !kc.has(host):
		return fmt.Sprintf("unauthorized (no credentials for %s in registry auth file %s): ", host, s.opts.AuthFile)
	}
	return fmt.Sprintf("unauthorized (credentials for %s from registry auth file %s refused): ", host, s.opts.AuthFile)
}

// endpoints lists the mirrors of r's registry, then the registry itself.
func (s *Store) endpoints(r Ref) ([]endpoint, error) {
	var eps []endpoint
	for _, m := range s.opts.Mirrors[r.Registry()] {
		u, err := url.Parse(m)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errorf(ErrInvalid, "mirror %q of %s: want http://HOST[:PORT] or https://HOST[:PORT]", m, r.Registry())
		}
		var nopts []name.Option
		if u.Scheme == "http" {
			nopts = append(nopts, name.Insecure)
		}
		mref, err := rehost(r, u.Host, nopts...)
		if err != nil {
			return nil, err
		}
		eps = append(eps, endpoint{ref: mref, mirror: m})
	}
	var nopts []name.Option
	if slices.Contains(s.opts.Insecure, r.Registry()) {
		nopts = append(nopts, name.Insecure)
	}
	up, err := rehost(r, r.Context().RegistryStr(), nopts...)
	if err != nil {
		return nil, err
	}
	return append(eps, endpoint{ref: up}), nil
}

// rehost is r with its registry replaced by host, same repository path.
func rehost(r Ref, host string, opts ...name.Option) (name.Reference, error) {
	sep := ":"
	if _, ok := r.Reference.(name.Digest); ok {
		sep = "@"
	}
	s := host + "/" + r.Context().RepositoryStr() + sep + r.Identifier()
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "reference %s", s)
	}
	return ref, nil
}

// plainHTTPHosts are the hosts spoken to over plain HTTP: the insecure list
// and the http:// mirrors. Nothing else, whatever go-containerregistry's
// guess for loopback and private addresses.
func (s *Store) plainHTTPHosts() map[string]bool {
	hosts := map[string]bool{}
	for _, h := range s.opts.Insecure {
		hosts[h] = true
	}
	for _, ms := range s.opts.Mirrors {
		for _, m := range ms {
			if u, err := url.Parse(m); err == nil && u.Scheme == "http" {
				hosts[u.Host] = true
			}
		}
	}
	return hosts
}

// httpGuard refuses plain-HTTP requests to hosts not allowed them
// (go-containerregistry tries http for loopback and private addresses by
// itself, and a redirect could lead anywhere).
type httpGuard struct {
	allowed map[string]bool
	next    http.RoundTripper
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowed[req.URL.Host] {
		return nil, fmt.Errorf("plain HTTP to %s refused: not an insecure registry", req.URL.Host)
	}
	return g.next.RoundTrip(req)
}

// platform is the platform picked from multi-arch indexes.
func (s *Store) platform() (*v1.Platform, error) {
	p := s.opts.Platform
	if p == "" {
		p = "linux/" + goruntime.GOARCH
	}
	plat, err := v1.ParsePlatform(p)
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "platform %q", p)
	}
	return plat, nil
}
