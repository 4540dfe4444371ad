package planner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/aurorabox/aurorabox/internal/transcripttest"
)

// base is the time that transcript offsets ("at=3s") count from.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts runs testdata/* with datadriven (-rewrite regenerates
// the expected output; see internal/transcripttest for the file format).
//
// A transcript starts with "new", whose input lines describe the task
// (a value with spaces is written cmdline=(...)); the other commands
// follow. A command with at=D moves the clock to D after the task's
// creation (at 0s) first.
//
//	new                     New with the task of the input lines:
//	  task [name=N] [max_failures=1] [max_concurrency=0] [finalization_wait=30s]
//	  process NAME [cmdline=(...)] [max_failures=1] [min_duration=5s] [daemon] [ephemeral] [final]
//	  order A B C...
//	next                    Next: "fork a/0", "term a/0", "kill_tree a/0",
//	                        "term_orphans", "kill_orphans", "wake OFFSET", "tick"
//	forked|started|lost P/R
//	exited P/R code=N
//	kill [grace=60s] | lose | tick
//	cycle P n=N [code=N|lost] [every=D]
//	                        N times: next (which must fork exactly P), forked,
//	                        started, exited (or lost); "every" apart
//	status                  "task STATE" and one line per process
//
// Every command prints the changes it made: "P/RUN OLD -> NEW
// [failures=N] [losses=N]" for processes, then "task OLD -> NEW @OFFSET" and
// "deadline OFFSET", and "error: ..." for a refused event. OFFSET is the
// time since the task was created.
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(t *testing.T) transcripttest.Script {
		s := &script{t: t, clock: transcripttest.NewClock(base)}
		return s.run
	})
}

// script runs one transcript.
type script struct {
	t     *testing.T
	task  Task
	p     *Planner
	clock *transcripttest.Clock
	recs  []Record // accepted inputs, for the replay check
	out   []string
}

func (s *script) emit(format string, args ...any) {
	s.out = append(s.out, fmt.Sprintf(format, args...))
}

func off(t time.Time) string { return t.Sub(base).String() }

func (s *script) run(t *testing.T, td *datadriven.TestData) (string, error) {
	s.out = nil
	if err := s.clock.Advance(td); err != nil {
		return "", err
	}
	if td.Cmd == "new" {
		if s.p != nil {
			return "", fmt.Errorf("a second new")
		}
		s.task = Task{Name: "task", MaxFailures: DefaultMaxFailures, FinalizationWait: DefaultFinalizationWait}
		lines, err := transcripttest.Lines(td)
		if err != nil {
			return "", err
		}
		for _, l := range lines {
			if err := s.header(append([]string{l.Cmd}, l.Words...)); err != nil {
				return "", fmt.Errorf("input line %d: %w", l.N, err)
			}
		}
		p, err := New(s.task, base)
		if err != nil {
			s.emit("error: %v", err)
			return strings.Join(s.out, "\n"), nil
		}
		s.p = p
		s.emitChanges(TaskSnapshot{State: Active, Statuses: []TaskStatus{{Active, base}}, Processes: s.initial()}, p.Snapshot())
		return strings.Join(s.out, "\n"), nil
	}
	if s.p == nil {
		return "", fmt.Errorf("command without a planner")
	}
	args, err := transcripttest.Words(td, "at")
	if err != nil {
		return "", err
	}
	before := s.p.Snapshot()
	if err := s.command(td.Cmd, args); err != nil {
		return "", err
	}
	s.emitChanges(before, s.p.Snapshot())
	s.checkReplay(td.Pos)
	return strings.Join(s.out, "\n"), nil
}

// initial is the snapshot of processes before New evaluated anything.
func (s *script) initial() []ProcessStatus {
	var ps []ProcessStatus
	for _, p := range s.task.Processes {
		ps = append(ps, ProcessStatus{Name: p.Name, State: Waiting, Run: -1})
	}
	return ps
}

func (s *script) header(f []string) error {
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
		return fmt.Errorf("unknown task line %q", f[0])
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

func (s *script) command(cmd string, args []string) error {
	switch cmd {
	case "next":
		d := s.p.Next(s.clock.Now)
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
		r := Record{Time: s.clock.Now, Kind: RecordKind(cmd), Process: name, Run: run, PID: 1000 + run}
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
		r := Record{Time: s.clock.Now, Kind: KindKill, Grace: time.Minute}
		if g, ok := kv(args)["grace"]; ok {
			var err error
			if r.Grace, err = time.ParseDuration(g); err != nil {
				return err
			}
		}
		s.apply(r)
	case "lose", "tick":
		s.apply(Record{Time: s.clock.Now, Kind: RecordKind(cmd)})
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
			s.clock.Now = s.clock.Now.Add(every)
		}
		d := s.p.Next(s.clock.Now)
		if len(d.Actions) != 1 || d.Actions[0].Kind != Fork || d.Actions[0].Process != name || d.Tick != nil {
			s.emit("error: cycle %d at %s: next gave %v", i, off(s.clock.Now), d.Actions)
			return nil
		}
		run := d.Actions[0].Run
		if first < 0 {
			first = run
		}
		before := len(s.out)
		s.apply(Record{Time: s.clock.Now, Kind: KindForked, Process: name, Run: run})
		s.apply(Record{Time: s.clock.Now, Kind: KindStarted, Process: name, Run: run})
		if lost {
			s.apply(Record{Time: s.clock.Now, Kind: KindLost, Process: name, Run: run})
		} else {
			s.apply(Record{Time: s.clock.Now, Kind: KindExited, Process: name, Run: run, ExitCode: code})
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
func (s *script) checkReplay(pos string) {
	var buf bytes.Buffer
	for _, r := range s.recs {
		b, err := EncodeRecord(r)
		if err != nil {
			s.t.Fatalf("%s: encode %v: %v", pos, r, err)
		}
		buf.Write(b)
	}
	recs, err := DecodeRecords(buf.Bytes())
	if err != nil {
		s.t.Fatalf("%s: decode: %v", pos, err)
	}
	rp, err := Replay(s.task, base, recs)
	if err != nil {
		s.t.Fatalf("%s: replay: %v", pos, err)
	}
	live, _ := json.Marshal(s.p.Snapshot())
	replayed, _ := json.Marshal(rp.Snapshot())
	if !bytes.Equal(live, replayed) {
		s.t.Fatalf("%s: replayed snapshot differs\nlive:     %s\nreplayed: %s", pos, live, replayed)
	}
}
