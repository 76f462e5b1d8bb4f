package images

import (
	"slices"
	"sort"
)

// Tag makes dst name the image src names (a reference or a digest). A dst
// that named another image is moved, as docker tag does.
func (s *Store) Tag(src, dst string) error {
	r, err := ParseRef(dst)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupLocked(src)
	if err != nil {
		return err
	}
	s.idx.Refs[r.String()] = d
	if err := s.saveLocked(); err != nil {
		return err
	}
	return s.gcLocked()
}

// Remove removes a reference, or with a digest every reference to that
// image. As docker rmi: removing one of several references only untags; the
// last reference of an image a container holds is refused with ErrBusy
// (nothing changes). What no image uses any more is collected at once.
func (s *Store) Remove(refOrDigest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupLocked(refOrDigest)
	if err != nil {
		return err
	}
	var drop []string
	if isDigest(refOrDigest) {
		for ref, x := range s.idx.Refs {
			if x == d {
				drop = append(drop, ref)
			}
		}
	} else {
		r, _ := ParseRef(refOrDigest)
		drop = []string{r.String()}
	}
	left := 0
	for _, x := range s.idx.Refs {
		if x == d {
			left++
		}
	}
	if left-len(drop) <= 0 && len(s.idx.Holds[d]) > 0 {
		return errorf(ErrBusy, "image %s is in use by %s", refOrDigest, joinOwners(s.idx.Holds[d]))
	}
	for _, ref := range drop {
		delete(s.idx.Refs, ref)
	}
	if err := s.saveLocked(); err != nil {
		return err
	}
	return s.gcLocked()
}

// Acquire records that owner (a container id) uses the image named by a
// reference or digest, and returns the image. While held, the image and its
// layers stay, whatever Tag and Remove do. Holds are kept in the index, so
// they survive a restart; acquiring twice is harmless.
func (s *Store) Acquire(refOrDigest, owner string) (*Image, error) {
	if owner == "" {
		return nil, errorf(ErrInvalid, "acquire: empty owner")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.lookupLocked(refOrDigest)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(s.idx.Holds[d], owner) {
		s.idx.Holds[d] = append(s.idx.Holds[d], owner)
		sort.Strings(s.idx.Holds[d])
		if err := s.saveLocked(); err != nil {
			return nil, err
		}
	}
	return s.imageLocked(d), nil
}

// Release drops owner's hold on the image with the given digest; an image
// left with neither reference nor holder is collected. Releasing what is not
// held is harmless.
func (s *Store) Release(digest, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	owners := s.idx.Holds[digest]
	i := slices.Index(owners, owner)
	if i < 0 {
		return nil
	}
	owners = slices.Delete(slices.Clone(owners), i, i+1)
	if len(owners) == 0 {
		delete(s.idx.Holds, digest)
	} else {
		s.idx.Holds[digest] = owners
	}
	if err := s.saveLocked(); err != nil {
		return err
	}
	return s.gcLocked()
}

// Holds returns every owner and the digests it holds, for the runtime to
// reconcile after a restart (release what a vanished container held).
func (s *Store) Holds() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for d, owners := range s.idx.Holds {
		for _, o := range owners {
			out[o] = append(out[o], d)
		}
	}
	return out
}

func joinOwners(o []string) string {
	s := ""
	for i, x := range o {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}
