package runtime

import "testing"

func TestParseImageMount(t *testing.T) {
	for _, c := range []struct {
		in   string
		want ImageMount
		bad  bool
	}{
		{in: "busybox:/v", want: ImageMount{Image: "busybox", Dest: "/v"}},
		{in: "localhost:5000/a/b:v1:/mnt/x:etc/ssl", want: ImageMount{Image: "localhost:5000/a/b:v1", Dest: "/mnt/x", SubPath: "etc/ssl"}},
		{in: "sha256:0123abcd:/v:a:b", want: ImageMount{Image: "sha256:0123abcd", Dest: "/v", SubPath: "a:b"}},
		{in: "busybox:/", want: ImageMount{Image: "busybox", Dest: "/"}},
		{in: "busybox:v", bad: true},
		{in: ":/v", bad: true},
		{in: "busybox:/v:", bad: true},
	} {
		got, err := ParseImageMount(c.in)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("%q: %+v, %v", c.in, got, err)
		}
		if !c.bad && got.String() != c.in {
			t.Errorf("%q: String %q", c.in, got.String())
		}
	}
}
