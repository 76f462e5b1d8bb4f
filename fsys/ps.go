package fsys

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ctrfs/ctrfs/runtime"
)

// The root's ps file: one line per container, in fixed columns under a
// header, the overview `runc list` and `docker ps` give. Like every file
// here it is a snapshot made at open, from memory: `watch cat ps` sees a
// fresh one each time, and no read runs the runtime.

// psHeader names the columns; psRow fills them in this order.
var psHeader = []string{"ID", "STATE", "PID", "CREATED", "EXIT", "BUNDLE"}

// psNone fills a column that has no value, so that every line has every
// column and `awk '{print $5}'` or `column -t` never shift.
const psNone = "-"

// newPSFile makes the ps file over rt.
func newPSFile(rt Runtime) *roFile {
	f := newROFile(func() ([]byte, error) {
		cs := rt.List()
		st := make([]runtime.Status, len(cs))
		for i, c := range cs {
			st[i] = c.Status()
		}
		return psTable(st), nil
	})
	// Page-sized, as stats: a reader sizing its buffer from stat reads it
	// in one go (content is what the read returns, with direct I/O).
	f.pageSize = true
	return f
}

// psTable renders the statuses sorted by id, one line each.
func psTable(st []runtime.Status) []byte {
	sort.Slice(st, func(i, j int) bool { return st[i].ID < st[j].ID })
	var buf bytes.Buffer
	// runc list's layout: columns as wide as their widest cell, 3 spaces
	// apart; the last column is not padded.
	w := tabwriter.NewWriter(&buf, 0, 8, 3, ' ', 0)
	w.Write([]byte(strings.Join(psHeader, "\t") + "\n"))
	for _, s := range st {
		w.Write([]byte(strings.Join(psRow(s), "\t") + "\n"))
	}
	w.Flush()
	return buf.Bytes()
}

// psRow is the cells of one container's line.
func psRow(s runtime.Status) []string {
	pid := psNone
	if s.Pid > 0 && s.State != runtime.Stopped {
		pid = strconv.Itoa(s.Pid)
	}
	exit := psNone
	if s.State == runtime.Stopped {
		switch string(s.ExitStatus) {
		case "", "null":
			exit = "unknown"
		default:
			exit = string(s.ExitStatus)
		}
	}
	created := psNone
	if !s.Created.IsZero() {
		created = s.Created.UTC().Format(time.RFC3339)
	}
	return []string{s.ID, string(s.State), pid, created, exit, psCell(s.Bundle)}
}

// psCell keeps a free-text cell (a bundle path) one word: one with a
// space, a tab or another unprintable character is shown Go-quoted (the
// exact bytes are in ID/bundle); an empty one is psNone.
func psCell(v string) string {
	if v == "" {
		return psNone
	}
	if !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"'
	}) {
		return strconv.Quote(v)
	}
	return v
}
