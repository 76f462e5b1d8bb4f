package fsys

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsVerbs holds docs/files.md to the command tables: each ctl
// file's verb list (the first block of its section) names the table's
// verbs in the table's order, and the `cat ctl` example shows the
// container table's verbs line. A verb added to a table and not to the
// docs, or the other way round, fails here.
func TestDocsVerbs(t *testing.T) {
	b, err := os.ReadFile("../docs/files.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range []struct {
		heading string
		verbs   []string
	}{
		{"## /mnt/ctr/ctl — root orders", names(rootTable)},
		{"### ID/ctl — container orders", names(containerTable)},
		{"### ID/processes/NAME/ctl", names(processTable)},
		{"### images/ctl", names(imagesTable)},
	} {
		got, err := docVerbs(doc, c.heading)
		if err != nil {
			t.Errorf("docs/files.md: %v", err)
			continue
		}
		if !reflect.DeepEqual(got, c.verbs) {
			t.Errorf("docs/files.md, %q lists verbs %q; the table has %q", c.heading, got, c.verbs)
		}
	}
	want := "verbs: " + containerTable.usage()
	found := false
	for _, l := range strings.Split(doc, "\n") {
		if strings.HasPrefix(l, "verbs: ") {
			found = true
			if l != want {
				t.Errorf("docs/files.md shows\n%s\nbut cat ID/ctl reads\n%s", l, want)
			}
		}
	}
	if !found {
		t.Errorf("docs/files.md shows no verbs line of cat ctl")
	}
}

func names[T any](tab cmdtab[T]) []string {
	var out []string
	for _, v := range tab {
		out = append(out, v.name)
	}
	return out
}

// docVerbs returns the verbs of the first fenced block after the heading:
// the first word of every line that starts one (continuation lines are
// indented), a verb shown in several forms (exec, update) once.
func docVerbs(doc, heading string) ([]string, error) {
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		return nil, fmt.Errorf("no section %q", heading)
	}
	rest := doc[i+1:]
	start := strings.Index(rest, "\n```\n")
	if start < 0 {
		return nil, fmt.Errorf("no verb block after %q", heading)
	}
	rest = rest[start+5:]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		return nil, fmt.Errorf("unterminated verb block after %q", heading)
	}
	var out []string
	for _, l := range strings.Split(rest[:end], "\n") {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			continue
		}
		w := strings.Fields(l)[0]
		if len(out) == 0 || out[len(out)-1] != w {
			out = append(out, w)
		}
	}
	return out, nil
}
