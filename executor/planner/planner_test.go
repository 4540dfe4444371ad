package planner

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sec(n float64) time.Time { return base.Add(time.Duration(n * float64(time.Second))) }

func mustNew(t *testing.T, task Task) *Planner {
	t.Helper()
	p, err := New(task, base)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNextDoesNotConsumeForks(t *testing.T) {
	p := mustNew(t, DefaultTask("t", DefaultProcess("a", ""), DefaultProcess("b", "")))
	d1, d2 := p.Next(base), p.Next(base)
	want := []Action{{Fork, "a", 0}, {Fork, "b", 0}}
	if !reflect.DeepEqual(d1.Actions, want) || !reflect.DeepEqual(d2.Actions, want) {
		t.Fatalf("Next twice: %v then %v, want %v both times", d1.Actions, d2.Actions, want)
	}
	must(t, p.Forked("a", 0, base))
	if d := p.Next(base); !reflect.DeepEqual(d.Actions, want[1:]) {
		t.Fatalf("after forking a: %v", d.Actions)
	}
	if err := p.Forked("a", 0, base); err == nil {
		t.Fatal("a second fork of the same run was accepted")
	}
}

// Signals are handed out once by a live planner, and again by a replayed one
// for runs that have not exited.
func TestSignalsOnceAndAgainAfterReplay(t *testing.T) {
	task := DefaultTask("t", DefaultProcess("a", ""), DefaultProcess("b", ""))
	p := mustNew(t, task)
	var recs []Record
	apply := func(r Record) {
		t.Helper()
		must(t, p.Apply(r))
		recs = append(recs, r)
	}
	apply(Record{Time: sec(0), Kind: KindForked, Process: "a"})
	apply(Record{Time: sec(0), Kind: KindForked, Process: "b"})
	apply(Record{Time: sec(1), Kind: KindKill, Grace: time.Minute})
	want := []Action{{Term, "a", 0}, {Term, "b", 0}, {Kind: TermOrphans}}
	if d := p.Next(sec(1)); !reflect.DeepEqual(d.Actions, want) {
		t.Fatalf("Next after kill: %v, want %v", d.Actions, want)
	}
	if d := p.Next(sec(1)); len(d.Actions) != 0 {
		t.Fatalf("signals handed out twice: %v", d.Actions)
	}
	apply(Record{Time: sec(2), Kind: KindExited, Process: "a", ExitCode: -15})

	r, err := Replay(task, base, recs)
	must(t, err)
	want = []Action{{Term, "b", 0}, {Kind: TermOrphans}}
	if d := r.Next(sec(2)); !reflect.DeepEqual(d.Actions, want) {
		t.Fatalf("Next after replay: %v, want %v", d.Actions, want)
	}
}

// The deadline passing is the one change time alone makes; Next reports it
// as a tick record so that the checkpoint shows it.
func TestDeadlineTick(t *testing.T) {
	task := DefaultTask("t", DefaultProcess("a", ""))
	p := mustNew(t, task)
	recs := []Record{
		{Time: sec(0), Kind: KindForked, Process: "a"},
		{Time: sec(1), Kind: KindKill, Grace: 10 * time.Second},
	}
	for _, r := range recs {
		must(t, p.Apply(r))
	}
	if d := p.Next(sec(5)); d.Tick != nil || !d.Wake.Equal(sec(11)) {
		t.Fatalf("before the deadline: tick %v wake %v", d.Tick, d.Wake)
	}
	d := p.Next(sec(12))
	if d.Tick == nil || d.Tick.Kind != KindTick || !d.Tick.Time.Equal(sec(12)) {
		t.Fatalf("past the deadline: tick %v", d.Tick)
	}
	if want := []Action{{KillTree, "a", 0}, {Kind: KillOrphans}}; !reflect.DeepEqual(d.Actions, want) {
		t.Fatalf("past the deadline: %v, want %v", d.Actions, want)
	}
	s := p.Snapshot()
	if s.State != TaskKilled || !s.Statuses[len(s.Statuses)-1].Time.Equal(sec(11)) {
		t.Fatalf("state %v at %v, want KILLED at the deadline", s.State, s.Statuses[len(s.Statuses)-1].Time)
	}
	if d := p.Next(sec(13)); d.Tick != nil || len(d.Actions) != 0 || !d.Wake.IsZero() {
		t.Fatalf("after the end: %+v", d)
	}

	without, err := Replay(task, base, recs)
	must(t, err)
	if without.TaskState() != Cleaning {
		t.Fatalf("replay without the tick: %v", without.TaskState())
	}
	with, err := Replay(task, base, append(recs, *d.Tick))
	must(t, err)
	if !reflect.DeepEqual(with.Snapshot(), p.Snapshot()) {
		t.Fatalf("replay with the tick differs:\n%+v\n%+v", with.Snapshot(), p.Snapshot())
	}
}

func TestClockNeverGoesBack(t *testing.T) {
	p := mustNew(t, DefaultTask("t", DefaultProcess("a", "")))
	must(t, p.Forked("a", 0, sec(10)))
	must(t, p.Started("a", 0, sec(5))) // wall clock stepped back
	must(t, p.Exited("a", 0, 1, sec(6)))
	s, _ := p.Process("a")
	if !s.StartTime.Equal(sec(10)) || !s.StopTime.Equal(sec(10)) {
		t.Fatalf("times %v %v, want both clamped to 10s", s.StartTime, s.StopTime)
	}
}

func TestTimesAreUTC(t *testing.T) {
	local := time.FixedZone("X", 3600)
	p, err := New(DefaultTask("t", DefaultProcess("a", "")), base.In(local))
	must(t, err)
	must(t, p.Forked("a", 0, sec(1).In(local)))
	s := p.Snapshot()
	if s.Statuses[0].Time.Location() != time.UTC || s.Processes[0].Runs[0].ForkTime.Location() != time.UTC {
		t.Fatal("times not normalized to UTC")
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	p := mustNew(t, DefaultTask("t", DefaultProcess("a", "")))
	must(t, p.Forked("a", 0, base))
	must(t, p.Exited("a", 0, 3, base))
	s := p.Snapshot()
	*s.Processes[0].Runs[0].ExitCode = 99
	*s.Processes[0].ExitCode = 99
	s.Processes[0].Runs[0].State = Lost
	s.Statuses[0].State = TaskLost
	again := p.Snapshot()
	if *again.Processes[0].Runs[0].ExitCode != 3 || *again.Processes[0].ExitCode != 3 ||
		again.Processes[0].Runs[0].State != Failed || again.Statuses[0].State != Active {
		t.Fatal("Snapshot shares memory with the planner")
	}
}

func TestTaskCopiedAtNew(t *testing.T) {
	task := DefaultTask("t", DefaultProcess("a", ""))
	p := mustNew(t, task)
	task.Processes[0].Name = "changed"
	if _, ok := p.Process("a"); !ok {
		t.Fatal("planner shares the caller's process slice")
	}
}

func TestStateNames(t *testing.T) {
	// Values and names of thermos_internal.thrift.
	procs := map[ProcessState]string{0: "WAITING", 1: "FORKED", 2: "RUNNING", 3: "SUCCESS", 4: "KILLED", 5: "FAILED", 6: "LOST"}
	for s, n := range procs {
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+n+`"` || s.String() != n {
			t.Errorf("%d: %s %v %q", int(s), b, err, s.String())
		}
		var back ProcessState
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%s: round trip %v %v", n, back, err)
		}
	}
	tasks := map[TaskState]string{0: "ACTIVE", 1: "SUCCESS", 2: "FAILED", 3: "KILLED", 4: "LOST", 5: "CLEANING", 6: "FINALIZING"}
	for s, n := range tasks {
		b, err := json.Marshal(s)
		if err != nil || string(b) != `"`+n+`"` || s.String() != n {
			t.Errorf("%d: %s %v %q", int(s), b, err, s.String())
		}
		var back TaskState
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%s: round trip %v %v", n, back, err)
		}
		if s.Terminal() != (s >= 1 && s <= 4) {
			t.Errorf("%s.Terminal() = %v", n, s.Terminal())
		}
	}
	var ps ProcessState
	if json.Unmarshal([]byte(`"BOGUS"`), &ps) == nil {
		t.Error("unknown process state accepted")
	}
	if _, err := json.Marshal(ProcessState(42)); err == nil {
		t.Error("invalid process state marshalled")
	}
	if _, err := json.Marshal(TaskState(-1)); err == nil {
		t.Error("invalid task state marshalled")
	}
}

func TestRecordFormat(t *testing.T) {
	ts := time.Date(2024, 5, 1, 10, 0, 0, 500000000, time.FixedZone("X", 7200))
	tests := []struct {
		r    Record
		want string
	}{
		{Record{Time: ts, Kind: KindForked, Process: "main", Run: 0, PID: 4242},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"forked","process":"main","run":0,"pid":4242}`},
		{Record{Time: ts, Kind: KindStarted, Process: "main", Run: 0, PID: 4242, PIDStart: 987654},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"started","process":"main","run":0,"pid":4242,"pid_start":987654}`},
		{Record{Time: ts, Kind: KindStarted, Process: "main", Run: 2},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"started","process":"main","run":2}`},
		{Record{Time: ts, Kind: KindExited, Process: "main", Run: 2, ExitCode: 0},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"exited","process":"main","run":2,"exit_code":0}`},
		{Record{Time: ts, Kind: KindLost, Process: "side", Run: 3},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"lost","process":"side","run":3}`},
		{Record{Time: ts, Kind: KindKill, Grace: time.Minute + 1},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"kill","grace":"1m0.000000001s"}`},
		{Record{Time: ts, Kind: KindKill},
			`{"time":"2024-05-01T08:00:00.5Z","kind":"kill","grace":"0s"}`},
		{Record{Time: ts, Kind: KindLose}, `{"time":"2024-05-01T08:00:00.5Z","kind":"lose"}`},
		{Record{Time: ts, Kind: KindTick}, `{"time":"2024-05-01T08:00:00.5Z","kind":"tick"}`},
	}
	var all []byte
	for _, tc := range tests {
		b, err := EncodeRecord(tc.r)
		must(t, err)
		if string(b) != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", b, tc.want)
		}
		all = append(all, b...)
	}
	recs, err := DecodeRecords(all)
	must(t, err)
	if len(recs) != len(tests) {
		t.Fatalf("decoded %d records", len(recs))
	}
	for i, r := range recs {
		w := tests[i].r
		w.Time = w.Time.UTC()
		if !reflect.DeepEqual(r, w) {
			t.Errorf("round trip %d: %+v, want %+v", i, r, w)
		}
	}
}

func TestDecodeRecords(t *testing.T) {
	good := `{"time":"2024-05-01T08:00:00Z","kind":"lose"}`
	tests := []struct {
		in      string
		n       int
		wantErr string
	}{
		{"", 0, ""},
		{good + "\n\n" + good + "\n", 2, ""},
		{good + "\n" + good[:20], 1, ""},                          // torn append
		{good + "\n" + good, 2, ""},                               // last line complete but unterminated
		{good + "\n{bad\n" + good + "\n", 1, "checkpoint line 2"}, // corruption
		{`{"time":"2024-05-01T08:00:00Z","kind":"kill","grace":"forever"}` + "\n", 0, "grace"},
	}
	for _, tc := range tests {
		recs, err := DecodeRecords([]byte(tc.in))
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want %q", tc.in, err, tc.wantErr)
		}
		if len(recs) != tc.n {
			t.Errorf("%q: %d records, want %d", tc.in, len(recs), tc.n)
		}
	}
}

func TestApplyRefusesBadRecords(t *testing.T) {
	task := DefaultTask("t", DefaultProcess("a", ""))
	for _, r := range []Record{
		{Kind: KindTick},
		{Time: base, Kind: "bogus"},
		{Time: base, Kind: KindKill, Process: "a"},
		{Time: base, Kind: KindStarted, Process: "a"},
		{Time: base, Kind: KindForked, Process: "a", Run: 1},
		{Time: base, Kind: KindForked, Process: "a", Run: -1},
		{Time: base, Kind: KindExited, Process: "zz"},
	} {
		p := mustNew(t, task)
		before := p.Snapshot()
		if err := p.Apply(r); err == nil {
			t.Errorf("%v accepted", r)
		}
		if !reflect.DeepEqual(before, p.Snapshot()) {
			t.Errorf("%v changed the state", r)
		}
		if _, err := Replay(task, base, []Record{r}); err == nil {
			t.Errorf("Replay accepted %v", r)
		}
	}
}
