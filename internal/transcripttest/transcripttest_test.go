package transcripttest

import (
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

func td(t *testing.T, line, input string) *datadriven.TestData {
	t.Helper()
	cmd, args, err := datadriven.ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	return &datadriven.TestData{Cmd: cmd, CmdArgs: args, Input: input}
}

func TestClock(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(base)
	for _, step := range []struct {
		line, want, err string
	}{
		{"tick", "0s", ""},
		{"tick at=5s", "5s", ""},
		{"tick at=+10s", "15s", ""},
		{"tick at=15s", "15s", ""},
		{"tick at=1m", "1m0s", ""},
		{"tick at=59s", "1m0s", "time goes back"},
		{"tick at=soon", "1m0s", "at=soon"},
		{"tick at=(1s, 2s)", "1m0s", "one offset"},
	} {
		err := c.Advance(td(t, step.line, ""))
		if step.err == "" && err != nil || step.err != "" && (err == nil || !strings.Contains(err.Error(), step.err)) {
			t.Errorf("%s: error %v, want %q", step.line, err, step.err)
		}
		if got := c.Offset(c.Now); got != step.want {
			t.Errorf("%s: clock at %s, want %s", step.line, got, step.want)
		}
	}
}

func TestWords(t *testing.T) {
	got, err := Words(td(t, "mesos TASK_FINISHED msg=(exit 0) 0-2=A>B x==y task=t2 at=1s service", ""), "at", "task")
	if err != nil {
		t.Fatal(err)
	}
	if want := "TASK_FINISHED|msg=exit 0|0-2=A>B|x==y|service"; strings.Join(got, "|") != want {
		t.Errorf("words %q, want %s", got, want)
	}
	if _, err := Words(td(t, "pause msg=(no, not this)", "")); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("a value with a comma: %v", err)
	}
}

func TestRepeat(t *testing.T) {
	for line, want := range map[string]int{"ok": 1, "ok repeat=4": 4, "ok repeat=0": 0, "ok repeat=x": 0} {
		n, err := Repeat(td(t, line, ""))
		if n != want || (err != nil) != (want == 0) {
			t.Errorf("%s: %d, %v; want %d", line, n, err, want)
		}
	}
}

func TestLines(t *testing.T) {
	ls, err := Lines(td(t, "new", "task max_failures=2\n# a comment\n\nprocess a cmdline=(echo a) daemon"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 2 || ls[0].N != 1 || ls[0].Cmd != "task" || strings.Join(ls[0].Words, "|") != "max_failures=2" ||
		ls[1].N != 4 || ls[1].Cmd != "process" || strings.Join(ls[1].Words, "|") != "a|cmdline=echo a|daemon" {
		t.Errorf("lines %+v", ls)
	}
	if _, err := Lines(td(t, "new", "task\nprocess a cmdline=(echo")); err == nil || !strings.Contains(err.Error(), "input line 2") {
		t.Errorf("unclosed parenthesis: %v", err)
	}
}
