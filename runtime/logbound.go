package runtime

// The bound of a process's output logs: the daemon's --log-max-size unless
// the container's create (or run) or the exec says otherwise. 0 keeps
// every byte while the disk guard allows (see the shim's boundedFile).

// CheckLogMaxSize validates a bound given to create, run or exec: 0 (no
// bound) or at least MinLogMaxSize bytes.
func CheckLogMaxSize(n int64) error {
	if n != 0 && n < MinLogMaxSize {
		return Errorf(KindInvalid, "--log-max-size %d: 0 (no bound) or at least %d bytes", n, MinLogMaxSize)
	}
	return nil
}

// checkLogMaxSize checks an optional bound of a request.
func checkLogMaxSize(n *int64) error {
	if n == nil {
		return nil
	}
	return CheckLogMaxSize(*n)
}

// logMaxSize is the bound a new process gets: the request's, else the
// container's (its record's), else the daemon's: the first that is given.
func (r *Runtime) logMaxSize(req, container *int64) int64 {
	switch {
	case req != nil:
		return *req
	case container != nil:
		return *container
	}
	return r.cfg.LogMaxSize
}

// shimLogMax is a bound as proto.Config says it: below 0 for none.
func shimLogMax(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// outputLost is Lost of init's stdout and stderr, for the status (-1 for
// a stream whose count could not be read: the log's error is the daemon's
// to log, not a reason to fail the status).
func (p *Process) outputLost() map[string]int64 {
	out := map[string]int64{}
	for _, s := range []string{Stdout, Stderr} {
		n, err := p.OutputLost(s)
		if err != nil {
			p.c.log.WithError(err).WithField("process", p.name).Warn("lost bytes of an output log")
			n = -1
		}
		out[s] = n
	}
	return out
}
