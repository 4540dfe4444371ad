package update

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/state"
)

var rewrite = flag.Bool("update", false, "rewrite testdata/* with the produced transcripts")

// base is the time that transcript offsets count from.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts runs each testdata/* scenario against a fake job and
// compares the whole transcript with the file (-update rewrites them).
//
// Lines starting with "#" are comments and lines starting with ">" are
// output (regenerated). The clock starts at 0s and moves with "at OFFSET
// COMMAND" ("at 1m", or "at +5s" relative). Instance lists are ids and
// ranges: "0-2,5".
//
//	settings [queue=N|batch=N|var=N,N,...] [autopause]
//	         [max_per_instance_failures=N] [max_failed_instances=N]
//	         [rollback] [min_wait=D] [pulse=D]
//	                           settings of the next start (default queue=1)
//	fits FROM TO               a TO task fits where a FROM task runs
//	tasks LIST CONFIG          RUNNING tasks of CONFIG for the instances
//	start SPEC...              start an update; SPEC is LIST=INITIAL>DESIRED,
//	                           either side empty for none ("5=>B" adds 5)
//	running|assign LIST        the instances' active tasks become RUNNING, ASSIGNED
//	killed LIST                their tasks on the way out end KILLED (a
//	                           DRAINING one is replaced, as a service's)
//	fail|finish|lost LIST      their active tasks end FAILED, FINISHED,
//	                           LOST and are replaced by PENDING tasks of the
//	                           same configuration (the scheduler reschedules
//	                           services)
//	drain LIST                 their active tasks become DRAINING
//	tick                       evaluate
//	pause|resume|abort|rollback [msg="..."]   the user's requests
//	error                      the scheduler fails the update (ERROR)
//	pulse                      a pulse
//	status                     "> STATUS: ID=PHASE ..."
//	show                       "> ID: task CONFIG STATUS ..." per instance
//
// After each command the update is evaluated, and again while a result
// asks for it (as the scheduler does when its tasks change). Output lines:
// "> update STATUS [by USER] [\"message\"]", "> ID ACTION" (instance
// events), "> kill tN (ID)[ reserve][: deleted]", "> add CONFIG to ID as
// tN", "> wake at OFFSET" (when the wake time changes), "> refused: ...".
func TestTranscripts(t *testing.T) {
	for _, f := range transcriptFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := newScript(t)
			got := s.run(string(in))
			if *rewrite {
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

func transcriptFiles(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	return files
}

// tablePairs is the transition table of reference §7.1, copied from the
// document independently of the package's table.
var tablePairs = map[Status][]Status{
	RollingForward:           {RollingBack, RollForwardPaused, RollForwardAwaitingPulse, RolledForward, Aborted, Failed, Error},
	RollingBack:              {RollBackPaused, RollBackAwaitingPulse, RolledBack, Aborted, Error, Failed},
	RollForwardPaused:        {RollingBack, RollingForward, RollForwardAwaitingPulse, Aborted, Error},
	RollBackPaused:           {RollingBack, RollBackAwaitingPulse, Aborted, Error},
	RollForwardAwaitingPulse: {RollingBack, RollingForward, RollForwardPaused, Aborted, Error},
	RollBackAwaitingPulse:    {RollingBack, RollBackPaused, Aborted, Error},
}

type pair struct{ from, to Status }

// TestTableMatchesReference checks the package's table against §7.1.
func TestTableMatchesReference(t *testing.T) {
	for _, from := range Statuses() {
		for _, to := range Statuses() {
			want := false
			for _, s := range tablePairs[from] {
				want = want || s == to
			}
			if got := Allowed(from, to); got != want {
				t.Errorf("Allowed(%v, %v) = %v, want %v", from, to, got, want)
			}
		}
		if from.Active() == from.Terminal() {
			t.Errorf("%v: active %v, terminal %v", from, from.Active(), from.Terminal())
		}
	}
	if len(Statuses()) != 11 {
		t.Errorf("%d statuses, want 11", len(Statuses()))
	}
}

// TestTranscriptsCoverTable fails unless the transcripts make every
// transition of §7.1.
func TestTranscriptsCoverTable(t *testing.T) {
	seen := map[pair]bool{}
	for _, f := range transcriptFiles(t) {
		in, _ := os.ReadFile(f)
		s := newScript(t)
		s.run(string(in))
		for p := range s.pairs {
			seen[p] = true
		}
	}
	var missing []string
	for from, tos := range tablePairs {
		for _, to := range tos {
			if !seen[pair{from, to}] {
				missing = append(missing, from.String()+" -> "+to.String())
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("transitions of §7.1 no transcript makes:\n  %s", strings.Join(missing, "\n  "))
	}
}

// TestJSONRoundTrip: an update stored mid-flight and read back goes on
// the same way.
func TestJSONRoundTrip(t *testing.T) {
	st := Settings{Strategy: Strategy{Kind: VariableBatch, GroupSizes: []int{1, 2}, Autopause: true},
		MaxFailedInstances: 1, MinWaitInRunning: 5 * time.Second, RollbackOnFailure: true, BlockIfNoPulsesAfter: time.Minute}
	u, _ := New(st, []Instance{{ID: 1, Initial: "A", Desired: "B"}, {ID: 0, Desired: "B"}}, base, "u", "")
	u.Pulse(base)
	u.Evaluate(base, View{})
	b, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var back Update
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*u, back) {
		t.Fatalf("round trip:\n%+v\n%+v\n%s", *u, back, b)
	}
}

func TestStrategyValidate(t *testing.T) {
	for _, c := range []struct {
		s    Strategy
		want string
	}{
		{Strategy{Kind: Queue, GroupSizes: []int{1}}, ""},
		{Strategy{Kind: Batch, GroupSizes: []int{0}}, "Update group size must be positive."},
		{Strategy{Kind: Queue}, "Update group size must be positive."},
		{Strategy{Kind: VariableBatch, GroupSizes: []int{1, 2}}, ""},
		{Strategy{Kind: VariableBatch, GroupSizes: []int{1, -2}}, "Update group size must be positive."},
		{Strategy{Kind: VariableBatch}, "Update group sizes must add up to a positive number."},
		{Strategy{Kind: 7, GroupSizes: []int{1}}, "Unknown update strategy."},
	} {
		err := c.s.Validate()
		if got := fmt.Sprint(err); (err == nil) != (c.want == "") || err != nil && got != c.want {
			t.Errorf("%+v: %v, want %q", c.s, err, c.want)
		}
	}
}

func TestDiff(t *testing.T) {
	cur := map[int]string{0: "A", 1: "B", 2: "A", 4: "A"}
	d := Compute(cur, "B", 4, nil)
	if fmt.Sprint(d.Add, d.Remove, d.Update, d.Unchanged, d.OutOfScope) != "[3] [4] [0 2] [1] []" {
		t.Errorf("diff %+v", d)
	}
	if got := d.Instances(cur, "B"); fmt.Sprint(got) != "[{0 A B} {2 A B} {3  B} {4 A }]" {
		t.Errorf("instances %v", got)
	}
	d = Compute(cur, "B", 4, []int{1, 2, 9})
	if fmt.Sprint(d.Add, d.Remove, d.Update, d.Unchanged, d.OutOfScope) != "[] [] [2] [1] [9]" {
		t.Errorf("scoped diff %+v", d)
	}
	if d = Compute(map[int]string{0: "B"}, "B", 1, nil); !d.Empty() {
		t.Errorf("no-op diff %+v", d)
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

// fakeTask is a task of the fake job.
type fakeTask struct {
	Task
	instance int
	seq      int
}

// script runs one transcript.
type script struct {
	t        *testing.T
	now      time.Time
	settings Settings
	fits     map[[2]string]bool
	tasks    map[string]*fakeTask
	next     int
	u        *Update
	wake     time.Time
	out      []string
	pairs    map[pair]bool
}

func newScript(t *testing.T) *script {
	return &script{t: t, now: base, settings: Settings{Strategy: Strategy{Kind: Queue, GroupSizes: []int{1}}},
		fits: map[[2]string]bool{}, tasks: map[string]*fakeTask{}, pairs: map[pair]bool{}}
}

func (s *script) emit(format string, args ...any) {
	s.out = append(s.out, "> "+fmt.Sprintf(format, args...))
}

func off(t time.Time) string { return t.Sub(base).String() }

func (s *script) run(in string) string {
	for n, line := range strings.Split(strings.TrimRight(in, "\n"), "\n") {
		if strings.HasPrefix(line, ">") {
			continue
		}
		s.out = append(s.out, line)
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if err := s.command(fields(trimmed)); err != nil {
			s.t.Fatalf("line %d %q: %v", n+1, line, err)
		}
	}
	return strings.Join(s.out, "\n") + "\n"
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

// ids parses "0-2,5".
func ids(spec string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

func (s *script) command(f []string) error {
	if f[0] == "at" {
		if len(f) < 3 {
			return fmt.Errorf("at needs an offset and a command")
		}
		d, err := time.ParseDuration(strings.TrimPrefix(f[1], "+"))
		if err != nil {
			return err
		}
		now := base.Add(d)
		if strings.HasPrefix(f[1], "+") {
			now = s.now.Add(d)
		}
		if now.Before(s.now) {
			return fmt.Errorf("time goes back to %s", f[1])
		}
		s.now = now
		f = f[2:]
	}
	cmd, args := f[0], f[1:]
	msg := ""
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "msg="); ok {
			msg = v
		}
	}
	switch cmd {
	case "settings":
		return s.setSettings(args)
	case "fits":
		if len(args) != 2 {
			return fmt.Errorf("fits FROM TO")
		}
		s.fits[[2]string{args[0], args[1]}] = true
		return nil
	case "tasks":
		if len(args) != 2 {
			return fmt.Errorf("tasks LIST CONFIG")
		}
		l, err := ids(args[0])
		if err != nil {
			return err
		}
		for _, i := range l {
			ft := s.add(i, args[1])
			ft.Status = state.Running
		}
		return nil
	case "start":
		return s.start(args)
	case "status":
		s.status()
		return nil
	case "show":
		s.show()
		return nil
	}
	if s.u == nil {
		return fmt.Errorf("%s before start", cmd)
	}
	var r Result
	var err error
	before := s.u.Status
	switch cmd {
	case "running", "assign", "killed", "fail", "finish", "lost", "drain":
		if len(args) != 1 {
			return fmt.Errorf("%s LIST", cmd)
		}
		l, err := ids(args[0])
		if err != nil {
			return err
		}
		for _, i := range l {
			if err := s.world(cmd, i); err != nil {
				return err
			}
		}
		r.Again = true
	case "tick":
		r.Again = true
	case "pause":
		r, err = s.u.Pause(s.now, "alice", msg)
	case "resume":
		r, err = s.u.Resume(s.now, "alice", msg)
	case "abort":
		r, err = s.u.Abort(s.now, "alice", msg)
	case "rollback":
		r, err = s.u.Rollback(s.now, "alice", msg)
	case "error":
		r, err = s.u.Fail(s.now, "internal error")
	case "pulse":
		var ps PulseStatus
		ps, r = s.u.Pulse(s.now)
		s.emit("pulse %s", ps)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		s.emit("refused: %v", err)
		return nil
	}
	s.record(before, r)
	s.settle(r)
	return nil
}

func (s *script) setSettings(args []string) error {
	st := Settings{Strategy: Strategy{Kind: Queue, GroupSizes: []int{1}}}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		var err error
		switch k {
		case "queue", "batch":
			st.Strategy.Kind = map[string]StrategyKind{"queue": Queue, "batch": Batch}[k]
			var n int
			n, err = strconv.Atoi(v)
			st.Strategy.GroupSizes = []int{n}
		case "var":
			st.Strategy.Kind, st.Strategy.GroupSizes = VariableBatch, nil
			for _, x := range strings.Split(v, ",") {
				n, e := strconv.Atoi(x)
				if e != nil {
					err = e
				}
				st.Strategy.GroupSizes = append(st.Strategy.GroupSizes, n)
			}
		case "autopause":
			st.Strategy.Autopause = true
		case "max_per_instance_failures":
			st.MaxPerInstanceFailures, err = strconv.Atoi(v)
		case "max_failed_instances":
			st.MaxFailedInstances, err = strconv.Atoi(v)
		case "rollback":
			st.RollbackOnFailure = true
		case "min_wait":
			st.MinWaitInRunning, err = time.ParseDuration(v)
		case "pulse":
			st.BlockIfNoPulsesAfter, err = time.ParseDuration(v)
		default:
			err = fmt.Errorf("unknown setting %q", k)
		}
		if err != nil {
			return err
		}
	}
	if err := st.Strategy.Validate(); err != nil {
		return err
	}
	s.settings = st
	return nil
}

func (s *script) add(instance int, config string) *fakeTask {
	s.next++
	ft := &fakeTask{Task: Task{ID: "t" + strconv.Itoa(s.next), Config: config, Status: state.Pending, Since: s.now}, instance: instance, seq: s.next}
	s.tasks[ft.ID] = ft
	return ft
}

func (s *script) active(instance int) *fakeTask {
	for _, ft := range s.tasks {
		if ft.instance == instance && ft.Status.Active() {
			return ft
		}
	}
	return nil
}

// world changes the fake job's tasks as Mesos and the scheduler would.
func (s *script) world(cmd string, i int) error {
	ft := s.active(i)
	if ft == nil {
		return fmt.Errorf("%s: instance %d has no active task", cmd, i)
	}
	set := func(st state.Status) { ft.Status, ft.Since = st, s.now }
	switch cmd {
	case "running":
		set(state.Running)
	case "assign":
		set(state.Assigned)
	case "drain":
		set(state.Draining)
		ft.EndRequested = true
	case "killed":
		if ft.Status != state.Killing && ft.Status != state.Draining {
			return fmt.Errorf("killed: %s of instance %d is %s", ft.ID, i, ft.Status)
		}
		was := ft.Status
		set(state.Killed)
		if was == state.Draining {
			s.add(i, ft.Config)
		}
	case "fail", "finish", "lost":
		set(map[string]state.Status{"fail": state.Failed, "finish": state.Finished, "lost": state.Lost}[cmd])
		s.add(i, ft.Config)
	}
	return nil
}

// record prints a result's events and instance events, in the order
// they happened.
func (s *script) record(before Status, r Result) {
	from := before
	ie := 0
	instanceEvents := func(upTo int) {
		for ; ie < upTo; ie++ {
			s.emit("%d %s", r.InstanceEvents[ie].Instance, r.InstanceEvents[ie].Action)
		}
	}
	for _, e := range r.Events {
		instanceEvents(e.after)
		line := "update " + e.Status.String()
		if e.User != "" {
			line += " by " + e.User
		}
		if e.Message != "" {
			line += " " + strconv.Quote(e.Message)
		}
		s.emit("%s", line)
		s.pairs[pair{from, e.Status}] = true
		from = e.Status
	}
	instanceEvents(len(r.InstanceEvents))
}

// settle evaluates while a result asks for it, carrying out the commands,
// and prints what happens.
func (s *script) settle(r Result) {
	for n := 0; r.Again; n++ {
		if n > 50 {
			s.t.Fatal("the update does not settle")
		}
		before := s.u.Status
		r = s.u.Evaluate(s.now, s.view())
		s.record(before, r)
		for _, c := range r.Commands {
			s.perform(c)
		}
		if !r.Wake.Equal(s.wake) {
			s.wake = r.Wake
			if !r.Wake.IsZero() {
				s.emit("wake at %s", off(r.Wake))
			}
		}
	}
}

func (s *script) perform(c Command) {
	switch c.Kind {
	case AddTask:
		ft := s.add(c.Instance, c.Config)
		s.emit("add %s to %d as %s", c.Config, c.Instance, ft.ID)
	case KillTask:
		ft := s.tasks[c.TaskID]
		line := fmt.Sprintf("kill %s (%d)", c.TaskID, c.Instance)
		if c.Reserve {
			line += " reserve"
		}
		if ft.Status == state.Pending || ft.Status == state.Throttled {
			delete(s.tasks, c.TaskID)
			line += ": deleted"
		} else {
			ft.Status, ft.Since, ft.EndRequested = state.Killing, s.now, true
		}
		s.emit("%s", line)
	}
}

func (s *script) view() View {
	v := View{Tasks: map[int][]Task{}, Fits: func(from, to string) bool { return s.fits[[2]string{from, to}] }}
	for _, ft := range s.sorted() {
		v.Tasks[ft.instance] = append(v.Tasks[ft.instance], ft.Task)
	}
	return v
}

func (s *script) sorted() []*fakeTask {
	var out []*fakeTask
	for _, ft := range s.tasks {
		out = append(out, ft)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (s *script) start(args []string) error {
	var insts []Instance
	for _, a := range args {
		list, spec, ok := strings.Cut(a, "=")
		from, to, ok2 := strings.Cut(spec, ">")
		if !ok || !ok2 {
			return fmt.Errorf("bad spec %q: want LIST=INITIAL>DESIRED", a)
		}
		l, err := ids(list)
		if err != nil {
			return err
		}
		for _, i := range l {
			insts = append(insts, Instance{ID: i, Initial: from, Desired: to})
		}
	}
	u, r := New(s.settings, insts, s.now, "alice", "")
	s.u = u
	for _, e := range r.Events {
		s.emit("update %s", e.Status)
	}
	s.settle(r)
	return nil
}

func (s *script) status() {
	var parts []string
	for i, in := range s.u.Instances {
		parts = append(parts, fmt.Sprintf("%d=%s", in.ID, s.u.Progress[i].Phase))
	}
	s.emit("%s: %s", s.u.Status, strings.Join(parts, " "))
}

func (s *script) show() {
	by := map[int][]string{}
	var insts []int
	for _, ft := range s.sorted() {
		if _, ok := by[ft.instance]; !ok {
			insts = append(insts, ft.instance)
		}
		by[ft.instance] = append(by[ft.instance], fmt.Sprintf("%s %s %s", ft.ID, ft.Config, ft.Status))
	}
	sort.Ints(insts)
	for _, i := range insts {
		s.emit("%d: %s", i, strings.Join(by[i], ", "))
	}
}
