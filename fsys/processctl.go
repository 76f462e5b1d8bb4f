package fsys

import (
	"context"
	"fmt"
	"strconv"
)

// processTable is the verbs of processes/NAME/ctl.
var processTable = cmdtab[Process]{
	row("kill", "kill [SIGNAL]", parseKill(false), func(p Process, ctx context.Context, a killArgs) error {
		return p.Signal(ctx, a.signal)
	}),
	bare("close-stdin", func(p Process, _ context.Context) error { return p.CloseStdin() }),
	row("resize", "resize COLS ROWS", parseResize, func(p Process, _ context.Context, s winSize) error {
		return p.Resize(s.cols, s.rows)
	}),
	bare("reopen-log", func(p Process, _ context.Context) error { return p.ReopenLog() }),
}

// winSize is the argument of resize.
type winSize struct{ cols, rows uint16 }

func parseResize(args []string, _ string) (winSize, error) {
	var s winSize
	pos, err := parseFlags(args, nil, nil)
	if err != nil {
		return s, err
	}
	if len(pos) != 2 {
		return s, fmt.Errorf("usage: resize COLS ROWS")
	}
	if s.cols, err = parseDimension("COLS", pos[0]); err != nil {
		return s, err
	}
	if s.rows, err = parseDimension("ROWS", pos[1]); err != nil {
		return s, err
	}
	return s, nil
}

// parseDimension parses a terminal's width or height: 1 to 65535.
func parseDimension(what, s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("resize: %s %q: want a number from 1 to 65535", what, s)
	}
	return uint16(n), nil
}
