// Command mkman writes the ctrfs(8) man page, in roff, from the daemon's
// own flags and the docs' Markdown, so the page never says other than the
// binary and docs/files.md do:
//
//	go run ./tools/mkman -ctrfs bin/ctrfs -version 0.1.0 \
//	    'INSTALLING AS A SERVICE=docs/install.md' 'THE FILE TREE=docs/files.md' > ctrfs.8
//
// It knows the Markdown the docs use: headings, paragraphs, fenced code,
// lists (nested by indentation), pipe tables, `code`, **bold**, *italic*
// and links. Each file after the flags becomes one section (TITLE=PATH);
// its first heading, the page's title, is dropped.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"unicode/utf8"
)

func main() {
	ctrfs := flag.String("ctrfs", "bin/ctrfs", "the ctrfs binary, asked for its usage and flags")
	version := flag.String("version", "", "version shown in the page footer (default: asked of the binary)")
	flag.Parse()
	if err := run(os.Stdout, *ctrfs, *version, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkman:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, ctrfs, version string, sections []string) error {
	usage, flags, err := askDaemon(ctrfs)
	if err != nil {
		return err
	}
	if version == "" {
		out, err := exec.Command(ctrfs, "version").Output()
		if err != nil {
			return fmt.Errorf("%s version: %v", ctrfs, err)
		}
		version = strings.TrimPrefix(strings.TrimSpace(string(out)), "ctrfs ")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, ".TH CTRFS 8 \"\" \"ctrfs %s\" \"System Administration\"\n", esc(version))
	// Left-aligned, never hyphenated: the page is full of paths and
	// options, which a hyphen or stretched spaces would garble.
	b.WriteString(".nh\n.ad l\n")
	b.WriteString(".SH NAME\nctrfs \\- containers as files: a container supervisor served as a FUSE file system\n")
	b.WriteString(".SH SYNOPSIS\n.nf\n")
	for _, l := range usage {
		b.WriteString(esc(strings.TrimPrefix(strings.TrimPrefix(l, "usage: "), "       ")) + "\n")
	}
	b.WriteString(".fi\n.SH DESCRIPTION\n")
	b.WriteString(inline("**ctrfs mount** mounts the container tree at MOUNTPOINT and serves it in the foreground until "+
		"SIGINT or SIGTERM, which unmount it; the containers keep running, each under a `ctrfs-shim` of its own, "+
		"and a daemon started again on the same state directory finds them all. Every container is a directory; "+
		"reading a file answers a question, writing a line to a `ctl` file gives an order. "+
		"Run under systemd (Type=notify), it sends READY=1 once the mount answers, and STOPPING=1 on SIGINT or SIGTERM.") + "\n")
	b.WriteString(".SH OPTIONS\n")
	args := usageArgs(usage)
	for _, f := range flags {
		arg := argText(f.arg)
		if a, ok := args[f.name]; ok {
			arg = " \\fI" + esc(a) + "\\fR"
		}
		fmt.Fprintf(&b, ".TP\n\\fB\\-\\-%s\\fR%s\n%s\n", esc(f.name), arg, inline(f.help))
	}
	for _, s := range sections {
		title, path, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("section %q: want TITLE=PATH", s)
		}
		md, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, ".SH %s\n", quoteArg(strings.ToUpper(title)))
		b.WriteString(convert(string(md)))
	}
	b.WriteString(".SH SEE ALSO\n\\fBrunc\\fR(8), \\fBfusermount3\\fR(1), \\fBsystemd.service\\fR(5), \\fBsd_notify\\fR(3)\n")
	_, err = w.Write(b.Bytes())
	return err
}

// flagDoc is one flag as the flag package prints it.
type flagDoc struct{ name, arg, help string }

// askDaemon runs `ctrfs` (its usage) and `ctrfs mount -h` (its flags).
func askDaemon(ctrfs string) (usage []string, flags []flagDoc, err error) {
	out, _ := exec.Command(ctrfs).CombinedOutput() // exits 2 after the usage
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			usage = append(usage, l)
		}
	}
	if len(usage) == 0 || !strings.HasPrefix(usage[0], "usage: ") {
		return nil, nil, fmt.Errorf("%s printed no usage: %q", ctrfs, out)
	}
	out, _ = exec.Command(ctrfs, "mount", "-h").CombinedOutput() // exits 1 after the flags
	// The flag package's PrintDefaults: "  -name type" then the help
	// indented by a tab, possibly over several lines.
	head := regexp.MustCompile(`^  -([a-z0-9-]+)(?: (\S+))?$`)
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		if m := head.FindStringSubmatch(l); m != nil {
			flags = append(flags, flagDoc{name: m[1], arg: m[2]})
		} else if strings.HasPrefix(l, "    \t") && len(flags) > 0 {
			f := &flags[len(flags)-1]
			f.help = strings.TrimSpace(f.help + " " + strings.TrimSpace(l))
		}
	}
	if len(flags) == 0 {
		return nil, nil, fmt.Errorf("%s mount -h listed no flags: %q", ctrfs, out)
	}
	return usage, flags, nil
}

// usageArg is a flag and its argument's name in the usage text:
// "[--state-dir DIR]".
var usageArg = regexp.MustCompile(`\[--([a-z0-9-]+) ([A-Z][A-Z_|]*)\]`)

// usageArgs maps each flag the usage names an argument for to that name.
func usageArgs(usage []string) map[string]string {
	out := map[string]string{}
	for _, l := range usage {
		for _, m := range usageArg.FindAllStringSubmatch(l, -1) {
			out[m[1]] = m[2]
		}
	}
	return out
}

// argText names a flag's argument by its type, as the usage line does.
func argText(typ string) string {
	switch typ {
	case "":
		return ""
	case "int", "uint", "int64", "uint64":
		return " \\fIN\\fR"
	case "duration":
		return " \\fIDURATION\\fR"
	default:
		return " \\fIVALUE\\fR"
	}
}

// convert turns Markdown into man(7) requests; the first heading (the
// document's title) is dropped.
func convert(md string) string {
	var b strings.Builder
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	var para []string
	flush := func() {
		if len(para) > 0 {
			b.WriteString(".PP\n" + inline(strings.Join(para, " ")) + "\n")
			para = nil
		}
	}
	seenTitle := false
	listDepth := 0 // .RS levels opened for nested list items
	closeLists := func() {
		for ; listDepth > 0; listDepth-- {
			b.WriteString(".RE\n")
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		trimmed := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(trimmed, "```"):
			flush()
			b.WriteString(".PP\n.RS 4\n.nf\n")
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "```"); i++ {
				b.WriteString(literal(lines[i]) + "\n")
			}
			b.WriteString(".fi\n.RE\n")
		case strings.HasPrefix(l, "#"):
			flush()
			closeLists()
			level := len(l) - len(strings.TrimLeft(l, "#"))
			text := strings.TrimSpace(l[level:])
			switch {
			case level == 1 && !seenTitle:
				seenTitle = true
			case level <= 3:
				b.WriteString(".SS " + quoteArg(plain(text)) + "\n")
			default:
				b.WriteString(".PP\n\\fB" + inline(text) + "\\fR\n")
			}
		case trimmed == "":
			flush()
		case strings.HasPrefix(trimmed, "|"):
			flush()
			closeLists()
			var rows [][]string
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				rows = append(rows, cells(lines[i]))
			}
			i--
			table(&b, rows)
		case listItem.MatchString(l):
			flush()
			indent := len(l) - len(strings.TrimLeft(l, " "))
			depth := indent / 2
			for ; listDepth < depth; listDepth++ {
				b.WriteString(".RS 2\n")
			}
			for ; listDepth > depth; listDepth-- {
				b.WriteString(".RE\n")
			}
			m := listItem.FindStringSubmatch(l)
			item := []string{m[2]}
			// Continuation lines: indented deeper than the marker, and
			// not an item themselves.
			for i+1 < len(lines) {
				next := lines[i+1]
				ni := len(next) - len(strings.TrimLeft(next, " "))
				if strings.TrimSpace(next) == "" || ni <= indent || listItem.MatchString(next) {
					break
				}
				item = append(item, strings.TrimSpace(next))
				i++
			}
			bullet := "\\(bu"
			if m[1] != "-" && m[1] != "*" {
				bullet = m[1]
			}
			fmt.Fprintf(&b, ".IP %s 3\n%s\n", bullet, inline(strings.Join(item, " ")))
		default:
			if len(para) == 0 {
				closeLists()
			}
			para = append(para, trimmed)
		}
	}
	flush()
	closeLists()
	return b.String()
}

var listItem = regexp.MustCompile(`^ *([-*]|[0-9]+\.) (.*)$`)

// cells splits a table row; `\|` is a literal bar.
func cells(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	row = strings.ReplaceAll(row, `\|`, "\x00")
	var out []string
	for _, c := range strings.Split(row, "|") {
		out = append(out, strings.TrimSpace(strings.ReplaceAll(c, "\x00", "|")))
	}
	return out
}

var tableRule = regexp.MustCompile(`^:?-+:?$`)

// table renders a pipe table as tagged paragraphs: the first cell is the
// tag; the others follow, each named by its column's header when there
// are more than two columns (tables read better so in a terminal's width
// than as tbl(1) boxes).
func table(b *strings.Builder, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	header := rows[0]
	body := rows[1:]
	if len(body) > 0 && len(body[0]) > 0 && tableRule.MatchString(body[0][0]) {
		body = body[1:]
	}
	b.WriteString(".PP\n")
	for _, r := range body {
		if len(r) == 0 {
			continue
		}
		b.WriteString(".TP\n" + inline(r[0]) + "\n")
		var rest []string
		for j, c := range r[1:] {
			if c == "" {
				continue
			}
			if len(r) > 2 && j+1 < len(header) && header[j+1] != "" {
				c = "**" + header[j+1] + "**: " + c
			}
			rest = append(rest, c)
		}
		b.WriteString(inline(strings.Join(rest, "; ")) + "\n")
	}
}

var (
	codeSpan = regexp.MustCompile("`([^`]*)`")
	bold     = regexp.MustCompile(`\*\*([^*]+)\*\*`)
	italic   = regexp.MustCompile(`(^|[^A-Za-z0-9*])\*([^*\s][^*]*)\*`)
	link     = regexp.MustCompile(`\[([^\]]+)\]\(([^)]+)\)`)
)

// inline renders a paragraph's text: code spans bold and literal, **bold**,
// *italic*, links as their text (and the address, when it leaves the docs).
func inline(s string) string {
	// Code spans first, kept aside so that nothing inside them is read
	// as Markdown.
	var spans []string
	s = codeSpan.ReplaceAllStringFunc(s, func(m string) string {
		spans = append(spans, m[1:len(m)-1])
		return fmt.Sprintf("\x01%d\x02", len(spans)-1)
	})
	s = link.ReplaceAllStringFunc(s, func(m string) string {
		p := link.FindStringSubmatch(m)
		if strings.HasPrefix(p[2], "http://") || strings.HasPrefix(p[2], "https://") {
			return p[1] + " <" + p[2] + ">"
		}
		return p[1]
	})
	s = esc(s)
	s = bold.ReplaceAllString(s, `\fB$1\fR`)
	s = italic.ReplaceAllString(s, `$1\fI$2\fR`)
	s = regexp.MustCompile("\x01([0-9]+)\x02").ReplaceAllStringFunc(s, func(m string) string {
		var n int
		fmt.Sscanf(m[1:len(m)-1], "%d", &n)
		return `\fB` + esc(spans[n]) + `\fR`
	})
	return lineStart(s)
}

// plain is a heading's text without Markdown, for .SS.
func plain(s string) string {
	s = codeSpan.ReplaceAllString(s, "$1")
	s = link.ReplaceAllString(s, "$1")
	return s
}

// literal renders a line of a code block.
func literal(s string) string { return lineStart(esc(s)) }

// lineStart keeps a line from being read as a request: one starting with
// '.' or '\” gets a zero-width \& first.
func lineStart(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// esc escapes text for roff: backslashes, hyphens as minus signs (what
// options and code are made of), and every non-ASCII character as a
// \[uXXXX] escape, so the page renders the same under any locale.
func esc(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r >= utf8.RuneSelf:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// quoteArg makes a request's argument one argument.
func quoteArg(s string) string {
	return `"` + strings.ReplaceAll(esc(s), `"`, `""`) + `"`
}
