package main

import "testing"

func TestConvert(t *testing.T) {
	for _, c := range []struct{ md, roff string }{
		{"# Title\n\nSome `--flag` and **bold**, *it*.\n", ".PP\nSome \\fB\\-\\-flag\\fR and \\fBbold\\fR, \\fIit\\fR.\n"},
		{"## A `x` head\n", ".SS \"A x head\"\n"},
		{"#### Verb\n", ".PP\n\\fBVerb\\fR\n"},
		{"```\n.dot \\ and - é\n```\n", ".PP\n.RS 4\n.nf\n\\&.dot \\e and \\- \\[u00E9]\n.fi\n.RE\n"},
		{"- one\n  more\n  - two\n- three\n", ".IP \\(bu 3\none more\n.RS 2\n.IP \\(bu 3\ntwo\n.RE\n.IP \\(bu 3\nthree\n"},
		{"| a | b | c |\n|---|---|---|\n| `x` | y \\| z | w |\n", ".PP\n.TP\n\\fBx\\fR\n\\fBb\\fR: y | z; \\fBc\\fR: w\n"},
		{"see [files](files.md) and [go](https://go.dev)\n", ".PP\nsee files and go <https://go.dev>\n"},
		{"`*` and `a*b*c` stay\n", ".PP\n\\fB*\\fR and \\fBa*b*c\\fR stay\n"},
	} {
		if got := convert(c.md); got != c.roff {
			t.Errorf("convert(%q) =\n%q\nwant\n%q", c.md, got, c.roff)
		}
	}
}
