package runtime

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what went wrong, so the filesystem can answer
// with the errno that means it.
type Kind int

const (
	// KindInternal is a fault of ctrfs itself or of the host (EIO).
	KindInternal Kind = iota
	// KindInvalid is bad syntax or a bad value (EINVAL).
	KindInvalid
	// KindNotFound is no such container or process (ENOENT).
	KindNotFound
	// KindExists is a name that is taken (EEXIST).
	KindExists
	// KindBusy is an order that does not fit the current state (EBUSY).
	KindBusy
	// KindRuntime is the OCI runtime failing; the text is its own (EIO).
	KindRuntime
	// KindTooBig is a command larger than the limit (EFBIG).
	KindTooBig
	// KindClosed is a stream that is not there or no longer takes bytes:
	// stdin of a process started without one, closed, or exited (EPIPE).
	KindClosed
	// KindNotTTY is a terminal order for a process without a terminal
	// (ENOTTY, as the kernel answers the same mistake).
	KindNotTTY
	// KindInterrupted is a wait given up because the caller was
	// interrupted (a signal to the writer): nothing was done (EINTR).
	KindInterrupted
	// KindTooMany is the daemon out of file descriptors (EMFILE) or the
	// system out of open files (ENFILE; see FileLimitError).
	KindTooMany
)

// Error is an error with a Kind and a message meant for the user. Its
// cause, when it reports one, stays reachable (errors.Is, errors.As), not
// only its text.
type Error struct {
	Kind  Kind
	Msg   string // the whole message, the cause's text included
	Cause error  // the error given to %w, or nil
}

func (e *Error) Error() string { return e.Msg }

// Unwrap is the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf makes an *Error of the given kind. As with fmt.Errorf, an error
// given to %w is wrapped: it becomes the Cause.
func Errorf(kind Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: kind, Msg: err.Error(), Cause: errors.Unwrap(err)}
}

// KindOf returns the Kind of err, KindInternal for errors without one.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
