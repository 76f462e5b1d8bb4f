package images

import (
	"errors"
	"fmt"
)

// The kinds of error the store returns. Every error from this package that is
// not a fault of the host wraps one of them, so callers test with errors.Is.
// The runtime maps them to its own Kinds (and so to errnos) in one place:
//
//	ErrNotFound -> KindNotFound (ENOENT)
//	ErrInvalid  -> KindInvalid  (EINVAL)
//	ErrUnsafe   -> KindInvalid  (EINVAL): a hostile archive or layer
//	ErrTooBig   -> KindTooBig   (EFBIG): a limit of Limits was passed
//	ErrBusy     -> KindBusy     (EBUSY): an image a container uses
//	ErrRegistry -> KindRuntime  (EIO): the registry failed or refused
//
// Anything else is internal (EIO).
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
	ErrUnsafe   = errors.New("unsafe")
	ErrTooBig   = errors.New("too big")
	ErrBusy     = errors.New("busy")
	ErrRegistry = errors.New("registry")
)

// Error is an error of one of the kinds above with a message for the user.
// Its text is the message alone; the kind is for errors.Is.
type Error struct {
	Kind error
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is e's kind, so errors.Is(err, ErrBusy) works.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// wrapf makes an error of kind with cause err; the message ends with err's.
func wrapf(kind error, err error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...) + ": " + err.Error(), Err: err}
}
