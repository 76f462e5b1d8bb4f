package fsys

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ctrfs/ctrfs/images"
)

// imagesTable is the verbs of images/ctl; its target is the image store.
var imagesTable = cmdtab[Images]{
	row("pull", "pull REF [--auth-file PATH]", parsePull, func(im Images, ctx context.Context, a pullArgs) error {
		return im.Pull(ctx, a.ref, a.authFile)
	}),
	row("import", "import REF PATH", parseImport, func(im Images, ctx context.Context, a importArgs) error {
		return im.Import(ctx, a.ref, a.path)
	}),
	row("tag", "tag SRC DST", parseTag, func(im Images, _ context.Context, a tagArgs) error {
		return im.Tag(a.src, a.dst)
	}),
	row("remove", "remove REF", parseWord("remove REF"), func(im Images, _ context.Context, ref string) error {
		return im.Remove(ref)
	}),
}

// parseWord parses a verb's one word (a reference or a digest, which the
// store resolves).
func parseWord(usage string) func(args []string, _ string) (string, error) {
	return func(args []string, _ string) (string, error) {
		pos, err := parseFlags(args, nil, nil)
		if err != nil {
			return "", err
		}
		if len(pos) != 1 {
			return "", fmt.Errorf("usage: %s", usage)
		}
		return pos[0], nil
	}
}

// parseRef parses `VERB REF`, a reference that names what is stored.
func parseRef(verb string) func(args []string, _ string) (string, error) {
	word := parseWord(verb + " REF")
	return func(args []string, obj string) (string, error) {
		ref, err := word(args, obj)
		if err != nil {
			return "", err
		}
		_, err = images.ParseRef(ref)
		return ref, err
	}
}

type importArgs struct{ ref, path string }

func parseImport(args []string, _ string) (importArgs, error) {
	pos, err := parseFlags(args, nil, nil)
	if err != nil {
		return importArgs{}, err
	}
	if len(pos) != 2 {
		return importArgs{}, fmt.Errorf("usage: import REF PATH")
	}
	a := importArgs{ref: pos[0], path: pos[1]}
	if _, err := images.ParseRef(a.ref); err != nil {
		return a, err
	}
	if !filepath.IsAbs(a.path) {
		return a, fmt.Errorf("import: path %q must be absolute", a.path)
	}
	return a, nil
}

type tagArgs struct{ src, dst string }

func parseTag(args []string, _ string) (tagArgs, error) {
	pos, err := parseFlags(args, nil, nil)
	if err != nil {
		return tagArgs{}, err
	}
	if len(pos) != 2 {
		return tagArgs{}, fmt.Errorf("usage: tag SRC DST")
	}
	_, err = images.ParseRef(pos[1])
	return tagArgs{src: pos[0], dst: pos[1]}, err
}

type pullArgs struct{ ref, authFile string }

// parsePull parses `pull REF [--auth-file PATH]`: PATH is this pull's own
// credentials, a docker config.json (images.CheckPullAuthFile).
func parsePull(args []string, _ string) (pullArgs, error) {
	var a pullArgs
	pos, err := parseFlags(args, nil, map[string]func(string){"--auth-file": func(v string) { a.authFile = v }})
	if err != nil {
		return a, err
	}
	if len(pos) != 1 {
		return a, fmt.Errorf("usage: pull REF [--auth-file PATH]")
	}
	a.ref = pos[0]
	if _, err := images.ParseRef(a.ref); err != nil {
		return a, err
	}
	if a.authFile == "" && containsFlag(args, "--auth-file") {
		return a, fmt.Errorf("--auth-file: empty path")
	}
	return a, nil
}
