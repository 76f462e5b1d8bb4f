package procfs

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// Fields 3 on: state, ppid, then 16 others, then the start time (22).
	rest := "S 77 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21 22\n"
	want := Stat{State: 'S', PPid: 77, Flags: 6, StartTime: 424242} // flags: field 9
	for _, comm := range []string{"sh", "a b", "x) (y", ") 1 2 3 (", ") (", "(((", ")))", ""} {
		got, err := ParseStat([]byte("1234 (" + comm + ") " + rest))
		if err != nil || got != want {
			t.Errorf("comm %q: got %+v, %v; want %+v", comm, got, err, want)
		}
	}
	for _, bad := range []string{
		"",
		"1 (sh",
		"1 (sh) S 1 2",
		"1 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x 20",
		"1 (sh) SS 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
		"1 (sh) S p 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
	} {
		if got, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("%q: got %+v, want an error", bad, got)
		}
	}
}

func TestSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.StartTime == 0 || st.PPid != os.Getppid() {
		t.Fatalf("ReadStat(self) = %+v, %v", st, err)
	}
	if s, err := StartTime(os.Getpid()); err != nil || s != st.StartTime {
		t.Errorf("StartTime(self) = %d, %v; want %d", s, err, st.StartTime)
	}
	for _, c := range []struct {
		pid   int
		start uint64
		want  bool
	}{
		{os.Getpid(), st.StartTime, true},
		{os.Getpid(), 0, true},
		{os.Getpid(), st.StartTime + 1, false},
		{0, 0, false},
		{-1, 0, false},
	} {
		if got := Alive(c.pid, c.start); got != c.want {
			t.Errorf("Alive(%d, %d) = %v; want %v", c.pid, c.start, got, c.want)
		}
	}
}

func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("/bin/true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Wait()
	// Unwaited, the child stays a zombie once it has exited.
	for i := 0; i < 1000; i++ {
		st, err := ReadStat(cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == 'Z' {
			if Alive(cmd.Process.Pid, 0) {
				t.Error("a zombie is Alive")
			}
			return
		}
		if i == 999 {
			t.Skipf("child never became a zombie (state %c)", st.State)
		}
		time.Sleep(time.Millisecond)
	}
}
