package images

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxUserFile caps /etc/passwd and /etc/group as read from an image.
const maxUserFile = 4 << 20

// ResolveUser is resolveUser, for a caller that writes the rest of the spec
// itself (create --image --config --user).
func ResolveUser(rootfs, user string, imageGroups bool) (specs.User, error) {
	return resolveUser(rootfs, user, imageGroups)
}

// resolveUser turns an image's User ("", "uid", "uid:gid", "name",
// "name:group", mixes) into ids, as docker does: a user found in
// /etc/passwd gives its primary gid unless a group is named, and, with
// imageGroups, the groups of /etc/group that list the user are added
// (without, /etc/group is read only to resolve a named group).
func resolveUser(rootfs, user string, imageGroups bool) (specs.User, error) {
	if user == "" {
		return specs.User{}, nil
	}
	uname, gname, hasGroup := strings.Cut(user, ":")
	var u specs.User
	var name string
	if id, err := strconv.ParseUint(uname, 10, 32); err == nil {
		u.UID = uint32(id)
		if e, ok, err := findEntry(rootfs, "etc/passwd", "", uname, 2); err != nil {
			return u, err
		} else if ok {
			name = e[0]
			if g, err := strconv.ParseUint(e[3], 10, 32); err == nil {
				u.GID = uint32(g)
			}
		}
	} else {
		e, ok, err := findEntry(rootfs, "etc/passwd", uname, "", 0)
		if err != nil {
			return u, err
		}
		if !ok {
			return u, errorf(ErrInvalid, "user %q: not in the image's /etc/passwd", uname)
		}
		uid, err1 := strconv.ParseUint(e[2], 10, 32)
		gid, err2 := strconv.ParseUint(e[3], 10, 32)
		if err1 != nil || err2 != nil {
			return u, errorf(ErrInvalid, "user %q: bad /etc/passwd line", uname)
		}
		u.UID, u.GID, name = uint32(uid), uint32(gid), uname
	}
	if hasGroup {
		if id, err := strconv.ParseUint(gname, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			e, ok, err := findEntry(rootfs, "etc/group", gname, "", 0)
			if err != nil {
				return u, err
			}
			if !ok {
				return u, errorf(ErrInvalid, "group %q: not in the image's /etc/group", gname)
			}
			gid, err := strconv.ParseUint(e[2], 10, 32)
			if err != nil {
				return u, errorf(ErrInvalid, "group %q: bad /etc/group line", gname)
			}
			u.GID = uint32(gid)
		}
	} else if name != "" && imageGroups {
		gids, err := supplementary(rootfs, name)
		if err != nil {
			return u, err
		}
		for _, g := range gids {
			if g != u.GID {
				u.AdditionalGids = append(u.AdditionalGids, g)
			}
		}
	}
	return u, nil
}

// findEntry finds the line of the colon-separated file rel (under rootfs)
// whose first field is name, or whose field idField is id.
func findEntry(rootfs, rel, name, id string, idField int) ([]string, bool, error) {
	b, err := readInRoot(rootfs, rel)
	if err != nil || b == nil {
		return nil, false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		if (name != "" && f[0] == name) || (id != "" && f[idField] == id) {
			return f, true, nil
		}
	}
	return nil, false, nil
}

func supplementary(rootfs, user string) ([]uint32, error) {
	b, err := readInRoot(rootfs, "etc/group")
	if err != nil || b == nil {
		return nil, err
	}
	var out []uint32
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 {
			continue
		}
		for _, m := range strings.Split(f[3], ",") {
			if m == user {
				if g, err := strconv.ParseUint(f[2], 10, 32); err == nil {
					out = append(out, uint32(g))
				}
			}
		}
	}
	return out, nil
}

// readInRoot reads rel inside rootfs as the container would see it
// (RESOLVE_IN_ROOT: an absolute symlink resolves inside rootfs, never out),
// a regular file within maxUserFile. A missing file is nil, no error.
func readInRoot(rootfs, rel string) ([]byte, error) {
	if rootfs == "" {
		return nil, nil
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), rel)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errorf(ErrUnsafe, "image's /%s is not a regular file", rel)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxUserFile {
		return nil, errorf(ErrTooBig, "image's /%s is larger than %d bytes", rel, maxUserFile)
	}
	return b, nil
}
