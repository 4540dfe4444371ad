package planner

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/* with the produced transcripts")

// base is the time that transcript offsets ("at 3s") count from.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts runs each testdata/* scenario and compares the whole
// produced transcript with the file (golden test; -update rewrites them).
//
// Format: a header, a line "---", then commands. Lines starting with "#" are
// comments and lines starting with ">" are output; both are regenerated
// (comments verbatim, output from the run).
//
//	task [name=N] [max_failures=1] [max_concurrency=0] [finalization_wait=30s]
//	process NAME [cmdline="..."] [max_failures=1] [min_duration=5s] [daemon] [ephemeral] [final]
//	order A B C...
//	---
//	[at OFFSET] next                    Next: "> fork a/0", "> term a/0", "> kill_tree a/0",
//	                                    "> term_orphans", "> kill_orphans", "> wake OFFSET", "> tick"
//	[at OFFSET] forked|started|lost P/R
//	[at OFFSET] exited P/R code=N
//	[at OFFSET] kill [grace=60s] | lose | tick
//	[at OFFSET] cycle P n=N [code=N|lost] [every=D]
//	                                    N times: next (which must fork exactly P), forked,
//	                                    started, exited (or lost); "every" apart
//	[at OFFSET] status                  "> task STATE" and one line per process
//
// After every command the changes are printed: "> P/RUN OLD -> NEW
// [failures=N] [losses=N]" for processes, then "> task OLD -> NEW @OFFSET" and
// "> deadline OFFSET", and "> error: ..." for a refused event. OFFSET is the
// time since the task was created (at 0s).
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := &script{t: t}
			got := s.run(string(in))
			if *update {
				if err := os.WriteFile(f, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(in) {
				t.Errorf("transcript differs (run with -update to rewrite, then review):\n%s", lineDiff(string(in), got))
			}
		})
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("first difference at line %d:\nwant: %s\ngot:  %s\n--- whole output ---\n%s", i+1, wl, gl, strings.Join(g, "\n"))
		}
	}
	return "(no difference?)"
}

// script runs one transcript.
type script struct {
	t    *testing.T
	task Task
	p    *Planner
	now  time.Time
	recs []Record // accepted inputs, for the replay check
	out  []string
}

func (s *script) emit(format string, args ...any) {
	s.out = append(s.out, "> "+fmt.Sprintf(format, args...))
}

func off(t time.Time) string { return t.Sub(base).String() }

func (s *script) run(in string) string {
	s.task = Task{Name: "task", MaxFailures: DefaultMaxFailures, FinalizationWait: DefaultFinalizationWait}
	s.now = base
	body := false
	for n, line := range strings.Split(strings.TrimRight(in, "\n"), "\n") {
		if strings.HasPrefix(line, ">") {
			continue
		}
		s.out = append(s.out, line)
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if !body {
			if trimmed == "---" {
				body = true
				p, err := New(s.task, base)
				if err != nil {
					s.emit("error: %v", err)
					continue
				}
				s.p = p
				s.emitChanges(TaskSnapshot{State: Active, Statuses: []TaskStatus{{Active, base}}, Processes: s.initial()}, p.Snapshot())
				continue
			}
			if err := s.header(trimmed); err != nil {
				s.t.Fatalf("line %d: %v", n+1, err)
			}
			continue
		}
		if s.p == nil {
			s.t.Fatalf("line %d: command without a planner", n+1)
		}
		before := s.p.Snapshot()
		if err := s.command(trimmed); err != nil {
			s.t.Fatalf("line %d: %v", n+1, err)
		}
		s.emitChanges(before, s.p.Snapshot())
		s.checkReplay(n + 1)
	}
	return strings.Join(s.out, "\n") + "\n"
}

// initial is the snapshot of processes before New evaluated anything.
func (s *script) initial() []ProcessStatus {
	var ps []ProcessStatus
	for _, p := range s.task.Processes {
		ps = append(ps, ProcessStatus{Name: p.Name, State: Waiting, Run: -1})
	}
	return ps
}

// fields splits a line on spaces, keeping double-quoted parts together.
func fields(line string) []string {
	var out []string
	var cur strings.Builder
	quoted, have := false, false
	for _, c := range line {
		switch {
		case c == '"':
			quoted, have = !quoted, true
		case c == ' ' && !quoted:
			if have {
				out = append(out, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

func (s *script) header(line string) error {
	f := fields(line)
	switch f[0] {
	case "task":
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "name":
				s.task.Name = v
			case "max_failures":
				s.task.MaxFailures, err = strconv.Atoi(v)
			case "max_concurrency":
				s.task.MaxConcurrency, err = strconv.Atoi(v)
			case "finalization_wait":
				s.task.FinalizationWait, err = time.ParseDuration(v)
			default:
				return fmt.Errorf("unknown task field %q", k)
			}
			if err != nil {
				return err
			}
		}
	case "process":
		if len(f) < 2 {
			return fmt.Errorf("process needs a name")
		}
		p := DefaultProcess(f[1], "")
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "cmdline":
				p.Cmdline = v
			case "max_failures":
				p.MaxFailures, err = strconv.Atoi(v)
			case "min_duration":
				p.MinDuration, err = time.ParseDuration(v)
			case "daemon":
				p.Daemon = true
			case "ephemeral":
				p.Ephemeral = true
			case "final":
				p.Final = true
			default:
				return fmt.Errorf("unknown process field %q", k)
			}
			if err != nil {
				return err
			}
		}
		s.task.Processes = append(s.task.Processes, p)
	case "order":
		s.task.Order = append(s.task.Order, f[1:])
	default:
		return fmt.Errorf("unknown header line %q", line)
	}
	return nil
}

func procRun(arg string) (string, int, error) {
	name, r, ok := strings.Cut(arg, "/")
	if !ok {
		return "", 0, fmt.Errorf("want PROCESS/RUN, got %q", arg)
	}
	run, err := strconv.Atoi(r)
	return name, run, err
}

func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = v
	}
	return m
}

func (s *script) command(line string) error {
	f := fields(line)
	if f[0] == "at" {
		if len(f) < 3 {
			return fmt.Errorf("at needs an offset and a command")
		}
		d, err := time.ParseDuration(f[1])
		if err != nil {
			return err
		}
		s.now = base.Add(d)
		f = f[2:]
	}
	cmd, args := f[0], f[1:]
	switch cmd {
	case "next":
		d := s.p.Next(s.now)
		if d.Tick != nil {
			s.recs = append(s.recs, *d.Tick)
			s.emit("tick")
		}
		for _, a := range d.Actions {
			s.emit("%s", a)
		}
		if !d.Wake.IsZero() {
			s.emit("wake %s", off(d.Wake))
		}
	case "forked", "started", "exited", "lost":
		if len(args) < 1 {
			return fmt.Errorf("%s needs PROCESS/RUN", cmd)
		}
		name, run, err := procRun(args[0])
		if err != nil {
			return err
		}
		r := Record{Time: s.now, Kind: RecordKind(cmd), Process: name, Run: run, PID: 1000 + run}
		if cmd == "exited" {
			c, ok := kv(args[1:])["code"]
			if !ok {
				return fmt.Errorf("exited needs code=N")
			}
			if r.ExitCode, err = strconv.Atoi(c); err != nil {
				return err
			}
		}
		s.apply(r)
	case "kill":
		r := Record{Time: s.now, Kind: KindKill, Grace: time.Minute}
		if g, ok := kv(args)["grace"]; ok {
			var err error
			if r.Grace, err = time.ParseDuration(g); err != nil {
				return err
			}
		}
		s.apply(r)
	case "lose", "tick":
		s.apply(Record{Time: s.now, Kind: RecordKind(cmd)})
	case "cycle":
		return s.cycle(args)
	case "status":
		s.emit("task %s", s.p.TaskState())
		for _, ps := range s.p.Snapshot().Processes {
			s.emit("%s %s run=%d runs=%d failures=%d successes=%d losses=%d", ps.Name, ps.State, ps.Run, len(ps.Runs), ps.Failures, ps.Successes, ps.Losses)
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

// apply goes through the typed methods, so that they are what the live
// planner exercises; the replay check goes through Apply.
func (s *script) apply(r Record) {
	var err error
	switch r.Kind {
	case KindForked:
		err = s.p.Forked(r.Process, r.Run, r.Time)
	case KindStarted:
		err = s.p.Started(r.Process, r.Run, r.Time)
	case KindExited:
		err = s.p.Exited(r.Process, r.Run, r.ExitCode, r.Time)
	case KindLost:
		err = s.p.Lost(r.Process, r.Run, r.Time)
	case KindKill:
		s.p.Kill(r.Time, r.Grace)
	case KindLose:
		s.p.Lose(r.Time)
	case KindTick:
		s.p.Tick(r.Time)
	}
	if err != nil {
		s.emit("error: %v", err)
		return
	}
	s.recs = append(s.recs, r)
}

func (s *script) cycle(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("cycle needs a process")
	}
	name := args[0]
	opts := kv(args[1:])
	n, err := strconv.Atoi(opts["n"])
	if err != nil {
		return fmt.Errorf("cycle n: %v", err)
	}
	code, _ := strconv.Atoi(opts["code"])
	_, lost := opts["lost"]
	var every time.Duration
	if e, ok := opts["every"]; ok {
		if every, err = time.ParseDuration(e); err != nil {
			return err
		}
	}
	first := -1
	for i := 0; i < n; i++ {
		if i > 0 {
			s.now = s.now.Add(every)
		}
		d := s.p.Next(s.now)
		if len(d.Actions) != 1 || d.Actions[0].Kind != Fork || d.Actions[0].Process != name || d.Tick != nil {
			s.emit("error: cycle %d at %s: next gave %v", i, off(s.now), d.Actions)
			return nil
		}
		run := d.Actions[0].Run
		if first < 0 {
			first = run
		}
		before := len(s.out)
		s.apply(Record{Time: s.now, Kind: KindForked, Process: name, Run: run})
		s.apply(Record{Time: s.now, Kind: KindStarted, Process: name, Run: run})
		if lost {
			s.apply(Record{Time: s.now, Kind: KindLost, Process: name, Run: run})
		} else {
			s.apply(Record{Time: s.now, Kind: KindExited, Process: name, Run: run, ExitCode: code})
		}
		if len(s.out) != before {
			return nil // an error was printed
		}
		if i == n-1 {
			s.emit("cycled %s runs %d-%d", name, first, run)
		}
	}
	return nil
}

func (s *script) emitChanges(before, after TaskSnapshot) {
	defer func() {
		for i := len(before.Statuses); i < len(after.Statuses); i++ {
			s.emit("task %s -> %s @%s", after.Statuses[i-1].State, after.Statuses[i].State, off(after.Statuses[i].Time))
		}
		if !after.Deadline.Equal(before.Deadline) {
			s.emit("deadline %s", off(after.Deadline))
		}
	}()
	for i, a := range after.Processes {
		b := before.Processes[i]
		if a.State == b.State && a.Run == b.Run && a.Failures == b.Failures && a.Losses == b.Losses {
			continue
		}
		line := fmt.Sprintf("%s/%d %s -> %s", a.Name, a.Run, b.State, a.State)
		if a.Failures != b.Failures {
			line += fmt.Sprintf(" failures=%d", a.Failures)
		}
		if a.Losses != b.Losses {
			line += fmt.Sprintf(" losses=%d", a.Losses)
		}
		s.emit("%s", line)
	}
}

// checkReplay rebuilds the planner from the records accepted so far, after a
// round trip through the checkpoint encoding, and compares snapshots.
func (s *script) checkReplay(line int) {
	var buf bytes.Buffer
	for _, r := range s.recs {
		b, err := EncodeRecord(r)
		if err != nil {
			s.t.Fatalf("line %d: encode %v: %v", line, r, err)
		}
		buf.Write(b)
	}
	recs, err := DecodeRecords(buf.Bytes())
	if err != nil {
		s.t.Fatalf("line %d: decode: %v", line, err)
	}
	rp, err := Replay(s.task, base, recs)
	if err != nil {
		s.t.Fatalf("line %d: replay: %v", line, err)
	}
	live, _ := json.Marshal(s.p.Snapshot())
	replayed, _ := json.Marshal(rp.Snapshot())
	if !bytes.Equal(live, replayed) {
		s.t.Fatalf("line %d: replayed snapshot differs\nlive:     %s\nreplayed: %s", line, live, replayed)
	}
}
