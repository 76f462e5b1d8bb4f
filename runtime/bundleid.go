package runtime

import (
	"errors"
	"fmt"
	"os"

	"github.com/ctrfs/ctrfs/internal/safeio"
	"golang.org/x/sys/unix"
)

// fileID is a directory's identity: device and inode. The bundle's is
// recorded at create (state.json), so that a bundle directory its owner
// swaps afterwards for another (or for a symlink to one) is refused where
// ctrfs works in it again (checkpoints/), never taken for the bundle.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (id fileID) String() string { return fmt.Sprintf("%d:%d", id.Dev, id.Ino) }

// idOf is the identity of the open file f.
func idOf(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// errBundleSwapped is the error of a bundle directory that is not the one
// the container was created with.
type errBundleSwapped struct {
	path      string
	want, got fileID
}

func (e *errBundleSwapped) Error() string {
	return fmt.Sprintf("bundle %s is not the directory the container was created with (device:inode %s, now %s): it was replaced or moved, and ctrfs works only in the bundle it was given", e.path, e.want, e.got)
}

// openBundleAs opens the bundle directory path, following the path given
// at create (the user who created the container chose it), and checks
// that it is the directory want names (a zero want, of a state.json from
// before identities were recorded, is not checked).
func openBundleAs(path string, want fileID) (*os.File, error) {
	f, err := safeio.OpenDir(-1, path, 0)
	if err != nil {
		return nil, err
	}
	if want == (fileID{}) {
		return f, nil
	}
	got, err := idOf(f)
	if err == nil && got != want {
		err = &errBundleSwapped{path: path, want: want, got: got}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// swappedBundle returns err as an *Error (EINVAL) when it says the bundle
// was swapped, else nil.
func swappedBundle(what string, err error) error {
	var sw *errBundleSwapped
	if errors.As(err, &sw) {
		return Errorf(KindInvalid, "%s: %v", what, sw)
	}
	return nil
}
