package images

import "os"

// gcLocked drops images that no reference names and no container holds, then
// removes blobs and unpacked layers that no image left uses (and that no
// ingest in progress has pinned). s.mu must be held.
func (s *Store) gcLocked() error {
	held := map[string]bool{}
	for _, r := range s.idx.Refs {
		held[r] = true
	}
	for d, owners := range s.idx.Holds {
		if len(owners) > 0 {
			held[d] = true
		}
	}
	changed := false
	for d := range s.idx.Images {
		if !held[d] {
			delete(s.idx.Images, d)
			changed = true
		}
	}
	if changed {
		if err := s.saveLocked(); err != nil {
			return err
		}
	}

	keep := map[string]bool{}
	for k := range s.pins {
		keep[k] = true
	}
	for _, im := range s.idx.Images {
		keep["blob "+im.Manifest] = true
		keep["blob "+im.Config] = true
		for _, l := range im.Layers {
			keep["blob "+l.Digest] = true
			keep["layer "+l.ChainID] = true
		}
	}
	var firstErr error
	sweep := func(dir, kind string) {
		ents, err := os.ReadDir(s.path(dir, "sha256"))
		if err != nil {
			firstErr = err
			return
		}
		for _, e := range ents {
			d := "sha256:" + e.Name()
			if keep[kind+" "+d] {
				continue
			}
			if kind == "layer" {
				delete(s.layerBytes, d)
			}
			// Make the tree unreachable by its name first, so a crash
			// halfway through leaves no half-removed layer under a
			// valid name (tmp/ is emptied by Open).
			victim := s.path(dir, "sha256", e.Name())
			tmp, err := os.MkdirTemp(s.path("tmp"), "gc-")
			if err == nil {
				if err = os.Rename(victim, tmp+"/x"); err == nil {
					err = os.RemoveAll(tmp)
				}
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}
	}
	sweep("blobs", "blob")
	sweep("layers", "layer")
	return firstErr
}
