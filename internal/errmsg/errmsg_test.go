package errmsg

import "testing"

func TestOneLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"  a\nb\r\nc\rd \t e\n\n", "a b c d e"},
		{"exec failed:\n\tno such file", "exec failed: no such file"},
	} {
		if got := OneLine(c.in); got != c.want {
			t.Errorf("OneLine(%q) = %q; want %q", c.in, got, c.want)
		}
	}
}

func TestLastRuntimeError(t *testing.T) {
	for _, c := range []struct{ name, out, want string }{
		{"none", "plain text", ""},
		{"empty", "", ""},
		{"warning only", `{"level":"warning","msg":"w","time":"t"}`, ""},
		{"log lines", `{"level":"info","msg":"i"}` + "\n" + `{"level":"error","msg":"first"}` + "\n" + `{"level":"error","msg":"second"}` + "\n", "second"},
		{"run together, with noise", `{"level":"warning","msg":"w","time":"t"}` + "\n" +
			`noise {"level":"error","msg":"first","time":"t"}{"level":"error","msg":"container \"x\" does not exist","time":"t"}` + "\ntrailing {",
			`container "x" does not exist`},
		{"fatal", `{"level":"fatal","msg":"boom"}`, "boom"},
		{"empty msg kept out", `{"level":"error","msg":"real"}{"level":"error","msg":""}`, "real"},
		{"multi-line msg", `{"level":"error","msg":"exec failed:\nno such file"}`, "exec failed: no such file"},
	} {
		if got := LastRuntimeError([]byte(c.out)); got != c.want {
			t.Errorf("%s: LastRuntimeError = %q; want %q", c.name, got, c.want)
		}
	}
}
