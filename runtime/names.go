package runtime

import "regexp"

// namePattern is what container ids and process names must match: never a
// leading '-' (it would read as a runtime flag), never '/' or a leading '.'
// (no path escapes), at most 128 characters.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// CheckName returns a KindInvalid error when name is not a valid id or
// process name. what says which ("container id", "process name").
func CheckName(what, name string) error {
	if !namePattern.MatchString(name) {
		return Errorf(KindInvalid, "invalid %s %q: must match %s", what, name, namePattern.String())
	}
	return nil
}
