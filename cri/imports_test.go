package cri

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoDaemonImports: the CRI server is a client of the mounted tree, never
// of the daemon's packages.
func TestNoDaemonImports(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	more, _ := filepath.Glob("../cmd/ctrfs-cri/*.go")
	for _, f := range append(files, more...) {
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/ctrfs/ctrfs/") && p != "github.com/ctrfs/ctrfs/cri" {
				t.Errorf("%s imports %s: the CRI server must use the mounted tree only", f, p)
			}
		}
	}
}
