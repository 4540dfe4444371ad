package update

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/aurorabox/aurorabox/internal/transcripttest"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// base is the time that transcript offsets count from.
var base = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TestTranscripts runs testdata/* against a fake job with datadriven
// (-rewrite regenerates the expected output; see internal/transcripttest
// for the file format).
//
// The clock starts at 0s and moves with a command's at=OFFSET ("at=1m",
// or "at=+5s" relative). Instance lists are ids and ranges: "0-2,5". A
// message with spaces is msg=(changed my mind).
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
//	pause|resume|abort|rollback [msg=M]   the user's requests
//	error                      the scheduler fails the update (ERROR)
//	pulse                      a pulse
//	status                     "STATUS: ID=PHASE ..."
//	show                       "ID: task CONFIG STATUS ..." per instance
//
// After each command the update is evaluated, and again while a result
// asks for it (as the scheduler does when its tasks change). Output lines:
// "update STATUS [by USER] [\"message\"]", "ID ACTION" (instance
// events), "kill tN (ID)[ reserve][: deleted]", "add CONFIG to ID as
// tN", "wake at OFFSET" (when the wake time changes), "refused: ...".
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(t *testing.T) transcripttest.Script {
		return newScript(t).run
	})
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
	transcripttest.Run(t, "testdata", func(t *testing.T) transcripttest.Script {
		s := newScript(t)
		s.pairs = seen
		return s.run
	})
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

// fakeTask is a task of the fake job.
type fakeTask struct {
	Task
	instance int
	seq      int
}

// script runs one transcript.
type script struct {
	t        *testing.T
	clock    *transcripttest.Clock
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
	return &script{t: t, clock: transcripttest.NewClock(base), settings: Settings{Strategy: Strategy{Kind: Queue, GroupSizes: []int{1}}},
		fits: map[[2]string]bool{}, tasks: map[string]*fakeTask{}, pairs: map[pair]bool{}}
}

func (s *script) emit(format string, args ...any) {
	s.out = append(s.out, fmt.Sprintf(format, args...))
}

func off(t time.Time) string { return t.Sub(base).String() }

// run runs one command and returns what it printed.
func (s *script) run(t *testing.T, td *datadriven.TestData) (string, error) {
	s.out = nil
	if err := s.clock.Advance(td); err != nil {
		return "", err
	}
	args, err := transcripttest.Words(td, "at")
	if err != nil {
		return "", err
	}
	if err := s.command(td.Cmd, args); err != nil {
		return "", err
	}
	return strings.Join(s.out, "\n"), nil
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

func (s *script) command(cmd string, args []string) error {
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
		r, err = s.u.Pause(s.clock.Now, "alice", msg)
	case "resume":
		r, err = s.u.Resume(s.clock.Now, "alice", msg)
	case "abort":
		r, err = s.u.Abort(s.clock.Now, "alice", msg)
	case "rollback":
		r, err = s.u.Rollback(s.clock.Now, "alice", msg)
	case "error":
		r, err = s.u.Fail(s.clock.Now, "internal error")
	case "pulse":
		var ps PulseStatus
		ps, r = s.u.Pulse(s.clock.Now)
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
	ft := &fakeTask{Task: Task{ID: "t" + strconv.Itoa(s.next), Config: config, Status: state.Pending, Since: s.clock.Now}, instance: instance, seq: s.next}
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
	set := func(st state.Status) { ft.Status, ft.Since = st, s.clock.Now }
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
		r = s.u.Evaluate(s.clock.Now, s.view())
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
			ft.Status, ft.Since, ft.EndRequested = state.Killing, s.clock.Now, true
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
	u, r := New(s.settings, insts, s.clock.Now, "alice", "")
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
