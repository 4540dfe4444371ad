package planner

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	p := func(name string, mod ...func(*Process)) Process {
		pr := DefaultProcess(name, "true")
		for _, m := range mod {
			m(&pr)
		}
		return pr
	}
	daemon := func(p *Process) { p.Daemon = true }
	ephemeral := func(p *Process) { p.Ephemeral = true }
	final := func(p *Process) { p.Final = true }
	task := func(order [][]string, procs ...Process) Task {
		t := DefaultTask("t", procs...)
		t.Order = order
		return t
	}

	tests := []struct {
		name string
		task Task
		want []string // substrings of the error; none: valid
	}{
		{"valid", task([][]string{{"a", "b", "c"}, {"e1", "e2"}, {"f1", "f2"}, {"a", "d"}, {"a", "b"}},
			p("a"), p("b"), p("c"), p("d", daemon), p("e1", ephemeral), p("e2", ephemeral, daemon),
			p("f1", final), p("f2", final, ephemeral)), nil},
		// Regex ^[^./][^/]*$: dots and spaces inside are fine.
		{"odd but valid names", task(nil, p("a.b"), p("a b"), p("a..")), nil},
		{"single-name order", task([][]string{{"a"}, {}}, p("a")), nil},
		{"no processes", task(nil), []string{`task "t" has no processes`}},
		{"empty name", task(nil, p("")), []string{`invalid name ""`}},
		{"hidden name", task(nil, p(".a")), []string{`invalid name ".a"`}},
		{"dot", task(nil, p(".")), []string{`invalid name "."`}},
		{"dotdot", task(nil, p("..")), []string{`invalid name ".."`}},
		{"slash", task(nil, p("a/b")), []string{`invalid name "a/b"`}},
		{"leading slash", task(nil, p("/a")), []string{`invalid name "/a"`}},
		{"duplicate", task(nil, p("a"), p("b"), p("a")), []string{`duplicate process name "a"`}},
		{"cycle", task([][]string{{"a", "b"}, {"b", "c"}, {"c", "a"}}, p("a"), p("b"), p("c")),
			[]string{"cycle: a -> b -> c -> a"}},
		{"self cycle", task([][]string{{"a", "a"}}, p("a")), []string{"cycle: a -> a"}},
		{"cycle in final plan", task([][]string{{"f", "g", "f"}}, p("f", final), p("g", final)), []string{"cycle: f -> g -> f"}},
		{"daemon dependency", task([][]string{{"d", "a"}}, p("a"), p("d", daemon)),
			[]string{`process "a" may not depend on daemon process "d"`}},
		{"daemon dependency between daemons", task([][]string{{"d", "e"}}, p("d", daemon), p("e", daemon)),
			[]string{`process "e" may not depend on daemon process "d"`}},
		{"ephemeral dependency", task([][]string{{"e", "a"}}, p("a"), p("e", ephemeral)),
			[]string{`non-ephemeral process "a" may not depend on ephemeral process "e"`}},
		{"cross-plan order", task([][]string{{"a", "f"}}, p("a"), p("f", final)),
			[]string{`order [a f]: "a" (regular) and "f" (final) are in different plans`}},
		{"unknown process in order", task([][]string{{"a", "nosuch"}}, p("a")),
			[]string{`order [a nosuch]: unknown process "nosuch"`}},
		{"negative process limits", task(nil, p("a", func(p *Process) { p.MaxFailures = -1; p.MinDuration = -time.Second })),
			[]string{`process "a": max_failures must be >= 0`, `process "a": min_duration must be >= 0`}},
		{"negative task limits", Task{Name: "t", Processes: []Process{p("a")}, MaxFailures: -1, MaxConcurrency: -2, FinalizationWait: -time.Second},
			[]string{"task max_failures must be >= 0", "task max_concurrency must be >= 0", "task finalization_wait must be >= 0"}},
		{"every problem is reported", task([][]string{{"d", "a"}, {"a", "x"}}, p("a"), p("d", daemon), p("a/")),
			[]string{"daemon process", `unknown process "x"`, `invalid name "a/"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.task)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := New(tc.task, base); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate accepted the task; want errors %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if _, nerr := New(tc.task, base); nerr == nil {
				t.Errorf("New accepted an invalid task")
			}
		})
	}
}
