package main

import (
	"errors"
	"flag"
	"fmt"
	"os/user"
	"strconv"

	"bazil.org/fuse"
	"github.com/ctrfs/ctrfs/fsys"
)

// shareFlags are the flags that let users besides root into the mount (see
// docs/files.md, Security).
type shareFlags struct {
	allowOther       *bool
	group, readGroup *string
}

func addShareFlags(flags *flag.FlagSet) *shareFlags {
	return &shareFlags{
		allowOther: flags.Bool("allow-other", false, "let users besides root into the mount: the members of --group and --read-group"),
		group:      flags.String("group", "", "operators' group (name or gid): may read everything and write ctl and stdin files (needs --allow-other)"),
		readGroup:  flags.String("read-group", "", "readers' group (name or gid): may read everything but ctl and stdin files, never write (needs --allow-other)"),
	}
}

// resolve turns the flags into the daemon's policy and the mount options
// the kernel needs to apply it.
func (s *shareFlags) resolve() (fsys.Access, []fuse.MountOption, error) {
	var acc fsys.Access
	// default_permissions: the kernel checks the modes the daemon shows,
	// and the daemon checks the same modes itself (fsys.Access).
	opts := []fuse.MountOption{fuse.DefaultPermissions()}
	var err error
	if acc.Operators, err = lookupGroup("--group", *s.group); err != nil {
		return acc, nil, err
	}
	if acc.Readers, err = lookupGroup("--read-group", *s.readGroup); err != nil {
		return acc, nil, err
	}
	shared := acc.Operators.Set || acc.Readers.Set
	switch {
	case shared && !*s.allowOther:
		// Without allow_other the kernel refuses everyone but the mounting
		// user, whatever the modes say.
		return acc, nil, errors.New("--group and --read-group need --allow-other (without it the kernel lets root alone in)")
	case *s.allowOther && !shared:
		return acc, nil, errors.New("--allow-other lets in the members of --group and --read-group: name at least one")
	case acc.Operators.Set && acc.Readers.Set && acc.Operators.Gid == acc.Readers.Gid:
		return acc, nil, errors.New("--group and --read-group name the same group: a reader could write")
	}
	if *s.allowOther {
		opts = append(opts, fuse.AllowOther())
	}
	return acc, opts, nil
}

// lookupGroup finds a group by name, or takes a gid.
func lookupGroup(flagName, name string) (fsys.Group, error) {
	if name == "" {
		return fsys.Group{}, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr != nil {
			return fsys.Group{}, fmt.Errorf("%s %s: %w", flagName, name, err)
		}
		// A gid with no name is a group all the same.
		g = &user.Group{Gid: name}
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return fsys.Group{}, fmt.Errorf("%s %s: gid %q: %w", flagName, name, g.Gid, err)
	}
	return fsys.Group{Set: true, Gid: uint32(gid)}, nil
}
