package state

import (
	"fmt"
	"reflect"
	"sort"
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
// Commands apply to the current task: the last one created, or the
// replacement of the current task once it is rescheduled; task=tN picks
// another. The clock starts at 0s and only moves with at=: "at=5m" sets it
// to 5m after the start, "at=+5s" moves it 5s on; it never goes back. Any
// command takes at= and task=; a message with spaces is msg=(exit 0).
//
//	config aurora|dev [transient_timeout=D] [flapping_threshold=D]
//	       [initial_flapping_delay=D] [max_flapping_delay=D]
//	       [initial_never_ran_delay=D]
//	                            Machine config for what follows (default aurora)
//	task [service] [max_task_failures=N] [failure_count=N]
//	     [partition=reschedule|keep] [partition_delay=D] [job=NAME]
//	                            a new task tN in INIT (max_task_failures
//	                            defaults to 1, as in Aurora); becomes current.
//	                            With job=NAME it is an instance of job NAME,
//	                            and so are its replacements
//	cron NAME on|off            job NAME gets (scheduleCronJob) or loses
//	                            (descheduleCronJob) a cron schedule
//	job NAME                    "job NAME exists|does not exist (...)", with
//	                            the statuses of its tasks (see JobExists)
//	insert                      INIT -> PENDING
//	assign                      -> ASSIGNED (the offer matcher placed it)
//	update STATUS [msg=M]       a status update
//	mesos TASK_X [msg=M]        a Mesos update, via FromMesos
//	kill|restart|drain|preempt  -> KILLING, RESTARTING, DRAINING, PREEMPTING
//	delete                      -> DELETED
//	tick                        fire every armed timer that is due, earliest
//	                            first, until none is
//	status                      "tN STATUS failures=N flaps=N [ancestor=tM]"
//	timers                      the timers Timers gives for the task (what a
//	                            restarted scheduler re-arms)
//
// Each action prints one line: "tN OLD -> NEW [\"message\"]" (SaveState),
// "tN failures=N", "tN reschedule as tM: INIT -> STATUS \"message\"
// (failures=N flaps=N)", "tN kill_task", "tN delete (OLD -> NEW)",
// "tN timer KIND at OFFSET". Outcomes other than success print
// "tN illegal OLD -> NEW", "tN noop (STATUS)"; a firing timer prints
// "tN KIND timer fires" or "tN KIND timer for STATUS since OFFSET is
// stale (task is STATUS since OFFSET)". After every command, each job whose
// existence changed prints "job NAME exists" or "job NAME no longer
// exists".
func TestTranscripts(t *testing.T) {
	transcripttest.Run(t, "testdata", func(t *testing.T) transcripttest.Script {
		return newScript(t).run
	})
}

// tablePairs is reference section 5.2, copied from the document
// independently of the package's table.
var tablePairs = map[Status][]Status{
	Init:        {Pending, Throttled},
	Pending:     {Assigned, Killing},
	Throttled:   {Pending, Killing},
	Assigned:    {Starting, Running, Finished, Failed, Restarting, Draining, Killed, Killing, Lost, Preempting},
	Starting:    {Running, Finished, Failed, Restarting, Draining, Killing, Killed, Lost, Preempting, Partitioned},
	Running:     {Finished, Restarting, Draining, Failed, Killing, Killed, Lost, Preempting, Partitioned},
	Partitioned: {Lost, Failed, Finished, Running, Assigned, Starting, Restarting, Draining, Preempting, Killing},
	Preempting:  {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Restarting:  {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Draining:    {Finished, Failed, Killing, Killed, Lost, Partitioned},
	Killing:     {Finished, Failed, Killed, Lost, Deleted, Partitioned},
	Finished:    {Deleted},
	Failed:      {Deleted},
	Killed:      {Deleted},
	Lost:        {Deleted},
}

type pair struct{ from, to Status }

func (p pair) String() string { return p.from.String() + " -> " + p.to.String() }

// TestTranscriptsCoverTable fails if some allowed transition of §5.2 is not
// made by any transcript, or if a transcript makes one that §5.2 does not
// allow.
func TestTranscriptsCoverTable(t *testing.T) {
	seen := map[pair]bool{}
	transcripttest.Run(t, "testdata", func(t *testing.T) transcripttest.Script {
		s := newScript(t)
		s.pairs = seen
		return s.run
	})
	var missing, extra []string
	total := 0
	for from, tos := range tablePairs {
		for _, to := range tos {
			total++
			if !seen[pair{from, to}] {
				missing = append(missing, pair{from, to}.String())
			}
		}
	}
	for p := range seen {
		if !inTable(p.from, p.to) {
			extra = append(extra, p.String())
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("%d of %d transitions of §5.2 are not exercised by any transcript:\n  %s", len(missing), total, strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("transcripts make transitions that §5.2 does not allow:\n  %s", strings.Join(extra, "\n  "))
	}
}

func inTable(from, to Status) bool {
	for _, s := range tablePairs[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TestTableMatchesReference checks the package's table against tablePairs.
func TestTableMatchesReference(t *testing.T) {
	all := append(Statuses(), Deleted)
	for _, from := range all {
		for _, to := range all {
			if got, want := Allowed(from, to), inTable(from, to); got != want {
				t.Errorf("Allowed(%v, %v) = %v, want %v", from, to, got, want)
			}
		}
		if got := Transitions(from); len(got) != len(tablePairs[from]) {
			t.Errorf("Transitions(%v) = %v, want %v", from, got, tablePairs[from])
		}
	}
}

// script runs one transcript.
type script struct {
	t      *testing.T
	m      *Machine
	tasks  map[string]Task
	cur    string
	next   int
	timers []Timer
	clock  *transcripttest.Clock
	out    []string
	pairs  map[pair]bool // transitions made (successful outcomes only)
	// Jobs: the job of each task that has one, the jobs with a cron
	// schedule, whether each job existed after the last command, and
	// the jobs in the order they were named.
	taskJob map[string]string
	cron    map[string]bool
	exists  map[string]bool
	jobs    []string
}

func newScript(t *testing.T) *script {
	s := &script{t: t, tasks: map[string]Task{}, clock: transcripttest.NewClock(base), pairs: map[pair]bool{},
		taskJob: map[string]string{}, cron: map[string]bool{}, exists: map[string]bool{}}
	s.m = &Machine{Config: AuroraConfig(), NewTaskID: s.newID}
	return s
}

func (s *script) newID(Task) string {
	s.next++
	return "t" + strconv.Itoa(s.next)
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
	target := s.cur
	if a, ok := td.Arg("task"); ok {
		if len(a.Vals) != 1 {
			return "", fmt.Errorf("task= needs one task")
		}
		target = a.Vals[0]
		if _, ok := s.tasks[target]; !ok {
			return "", fmt.Errorf("no task %s", target)
		}
	}
	args, err := transcripttest.Words(td, "at", "task")
	if err != nil {
		return "", err
	}
	if err := s.command(target, td.Cmd, args); err != nil {
		return "", err
	}
	s.reportJobs()
	return strings.Join(s.out, "\n"), nil
}

func kv(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s given twice", k)
		}
		m[k] = v
	}
	return m, nil
}

func (s *script) command(target, cmd string, args []string) error {
	opts, err := kv(args)
	if err != nil {
		return err
	}
	if cmd != "config" && cmd != "task" && cmd != "tick" && cmd != "cron" && cmd != "job" && target == "" {
		return fmt.Errorf("%s before any task", cmd)
	}
	switch cmd {
	case "config":
		return s.config(args)
	case "task":
		return s.newTask(opts)
	case "insert":
		s.transition(target, Pending, "")
	case "assign":
		s.transition(target, Assigned, "")
	case "kill":
		s.transition(target, Killing, "")
	case "restart":
		s.transition(target, Restarting, "")
	case "drain":
		s.transition(target, Draining, "")
	case "preempt":
		s.transition(target, Preempting, "")
	case "delete":
		s.transition(target, Deleted, "")
	case "update", "mesos":
		if len(args) < 1 {
			return fmt.Errorf("%s needs a status", cmd)
		}
		var st Status
		if cmd == "update" {
			st, err = ParseStatus(args[0])
		} else {
			st, err = FromMesos(args[0])
		}
		if err != nil {
			return err
		}
		msg, _ := kv(args[1:])
		s.transition(target, st, msg["msg"])
	case "tick":
		s.tick()
	case "cron":
		if len(args) != 2 || args[1] != "on" && args[1] != "off" {
			return fmt.Errorf("cron needs a job name and on or off")
		}
		s.addJob(args[0])
		s.cron[args[0]] = args[1] == "on"
	case "job":
		if len(args) != 1 {
			return fmt.Errorf("job needs a job name")
		}
		s.emit("%s", s.describeJob(args[0]))
	case "status":
		tk := s.tasks[target]
		line := fmt.Sprintf("%s %s failures=%d flaps=%d%s", tk.ID, tk.Status, tk.FailureCount, tk.Flaps, neverRan(tk))
		if tk.AncestorID != "" {
			line += " ancestor=" + tk.AncestorID
		}
		s.emit("%s", line)
	case "timers":
		tms := s.m.Timers(s.tasks[target])
		if len(tms) == 0 {
			s.emit("%s no timers", target)
		}
		for _, tm := range tms {
			s.emit("%s timer %s at %s", tm.TaskID, tm.Kind, off(tm.At))
		}
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	return nil
}

func (s *script) config(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("config needs aurora or dev")
	}
	switch args[0] {
	case "aurora":
		s.m.Config = AuroraConfig()
	case "dev":
		s.m.Config = DevConfig()
	default:
		return fmt.Errorf("unknown config %q", args[0])
	}
	opts, err := kv(args[1:])
	if err != nil {
		return err
	}
	for k, v := range opts {
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		switch k {
		case "transient_timeout":
			s.m.Config.TransientTaskStateTimeout = d
		case "flapping_threshold":
			s.m.Config.FlappingTaskThreshold = d
		case "initial_flapping_delay":
			s.m.Config.InitialFlappingTaskDelay = d
		case "max_flapping_delay":
			s.m.Config.MaxFlappingTaskDelay = d
		case "initial_never_ran_delay":
			s.m.Config.InitialNeverRanTaskDelay = d
		default:
			return fmt.Errorf("unknown config knob %q", k)
		}
	}
	return nil
}

func (s *script) newTask(opts map[string]string) error {
	tk := Task{ID: s.newID(Task{}), Status: Init, MaxTaskFailures: 1}
	var pp PartitionPolicy
	havePolicy := false
	for k, v := range opts {
		var err error
		switch k {
		case "service":
			tk.IsService = true
		case "max_task_failures":
			tk.MaxTaskFailures, err = strconv.Atoi(v)
		case "failure_count":
			tk.FailureCount, err = strconv.Atoi(v)
		case "partition":
			havePolicy = true
			switch v {
			case "reschedule":
				pp.Reschedule = true
			case "keep":
			default:
				err = fmt.Errorf("partition=%q: want reschedule or keep", v)
			}
		case "partition_delay":
			havePolicy = true
			pp.Delay, err = time.ParseDuration(v)
		case "job":
			if v == "" {
				err = fmt.Errorf("job= needs a name")
			}
			s.addJob(v)
			s.taskJob[tk.ID] = v
		default:
			err = fmt.Errorf("unknown task option %q", k)
		}
		if err != nil {
			return err
		}
	}
	if havePolicy {
		tk.PartitionPolicy = &pp
	}
	s.tasks[tk.ID] = tk
	s.cur = tk.ID
	s.emit("%s created INIT", tk.ID)
	return nil
}

func (s *script) transition(id string, to Status, msg string) {
	tk := s.tasks[id]
	r := s.m.Transition(tk, to, Event{Time: s.clock.Now, Message: msg})
	if r.Outcome == Illegal {
		s.emit("%s illegal %s -> %s", id, tk.Status, to)
	}
	s.apply(tk, r)
}

// apply records a result: prints it, checks that performing its actions on
// a copy of the store gives the tasks the result reports, and keeps the
// armed timers.
func (s *script) apply(before Task, r Result) {
	id := before.ID
	if r.Outcome == Noop {
		s.emit("%s noop (%s)", id, before.Status)
	}
	shadow := map[string]Task{}
	for k, v := range s.tasks {
		shadow[k] = v.clone()
	}
	if err := performActions(shadow, r.Actions); err != nil {
		s.t.Fatalf("%s: %v", id, err)
	}
	if !reflect.DeepEqual(normalize(shadow[id]), normalize(r.Task)) {
		s.t.Fatalf("%s: actions give %+v, result says %+v", id, shadow[id], r.Task)
	}
	for _, a := range r.Actions {
		s.emit("%s", s.describe(a))
		if r.Outcome == Success {
			switch a.Kind {
			case SaveState, Delete, Reschedule:
				s.pairs[pair{a.From, a.To}] = true
			}
		}
		switch a.Kind {
		case Reschedule:
			if id == s.cur {
				s.cur = a.Replacement.ID
			}
			if j, ok := s.taskJob[a.TaskID]; ok {
				s.taskJob[a.Replacement.ID] = j
			}
		case Schedule:
			s.timers = append(s.timers, a.Timer)
		}
	}
	s.tasks = shadow
}

func normalize(t Task) Task {
	if len(t.Events) == 0 {
		t.Events = nil
	}
	return t
}

// performActions does what a scheduler does with the actions, on a map
// store. It fails on actions that make no sense (unknown task, bad order).
func performActions(store map[string]Task, actions []Action) error {
	for _, a := range actions {
		tk, ok := store[a.TaskID]
		switch a.Kind {
		case SaveState:
			if !ok || tk.Status != a.From {
				return fmt.Errorf("save %s %v -> %v: task is %+v", a.TaskID, a.From, a.To, tk)
			}
			tk.Status = a.To
			tk.Events = appendEvent(tk.Events, TaskEvent{Time: a.Time, Status: a.To, Message: a.Message})
		case IncrementFailures:
			if !ok || a.Failures != tk.FailureCount+1 {
				return fmt.Errorf("increment %s to %d: task is %+v", a.TaskID, a.Failures, tk)
			}
			tk.FailureCount = a.Failures
		case Reschedule:
			nt := a.Replacement
			if !ok || nt == nil || nt.AncestorID != a.TaskID || nt.FailureCount != tk.FailureCount || nt.Status != a.To {
				return fmt.Errorf("reschedule of %s: bad replacement %+v (old %+v)", a.TaskID, nt, tk)
			}
			if _, dup := store[nt.ID]; dup {
				return fmt.Errorf("reschedule of %s: id %s in use", a.TaskID, nt.ID)
			}
			store[nt.ID] = nt.clone()
			continue
		case Delete:
			if !ok || tk.Status != a.From {
				return fmt.Errorf("delete %s (%v -> %v): task is %+v", a.TaskID, a.From, a.To, tk)
			}
			tk.Status = Deleted
		case KillTask, Schedule:
			if !ok {
				return fmt.Errorf("%v for unknown task %s", a.Kind, a.TaskID)
			}
			continue
		default:
			return fmt.Errorf("unknown action %v", a.Kind)
		}
		store[a.TaskID] = tk
	}
	return nil
}

func (s *script) describe(a Action) string {
	quote := func(m string) string {
		if m == "" {
			return ""
		}
		return " " + strconv.Quote(m)
	}
	switch a.Kind {
	case SaveState:
		return fmt.Sprintf("%s %s -> %s%s", a.TaskID, a.From, a.To, quote(a.Message))
	case IncrementFailures:
		return fmt.Sprintf("%s failures=%d", a.TaskID, a.Failures)
	case Reschedule:
		return fmt.Sprintf("%s reschedule as %s: %s -> %s%s (failures=%d flaps=%d%s)", a.TaskID, a.Replacement.ID, a.From, a.To, quote(a.Message), a.Replacement.FailureCount, a.Replacement.Flaps, neverRan(*a.Replacement))
	case KillTask:
		return fmt.Sprintf("%s kill_task", a.TaskID)
	case Delete:
		return fmt.Sprintf("%s delete (%s -> %s)", a.TaskID, a.From, a.To)
	case Schedule:
		return fmt.Sprintf("%s timer %s at %s", a.TaskID, a.Timer.Kind, off(a.Timer.At))
	}
	return fmt.Sprintf("%+v", a)
}

func (s *script) tick() {
	for {
		i := -1
		for j, tm := range s.timers {
			if !tm.At.After(s.clock.Now) && (i < 0 || tm.At.Before(s.timers[i].At)) {
				i = j
			}
		}
		if i < 0 {
			return
		}
		tm := s.timers[i]
		s.timers = append(s.timers[:i], s.timers[i+1:]...)
		tk := s.tasks[tm.TaskID]
		r := s.m.Fire(tk, tm, s.clock.Now)
		if r.Outcome == Stale {
			s.emit("%s %s timer for %s since %s is stale (task is %s since %s)", tm.TaskID, tm.Kind, tm.Status, off(tm.Since), tk.Status, off(tk.LastEventTime()))
			continue
		}
		s.emit("%s %s timer fires", tm.TaskID, tm.Kind)
		if r.Outcome == Illegal {
			s.emit("%s illegal %s", tm.TaskID, tk.Status)
		}
		s.apply(tk, r)
	}
}

// neverRan prints a task's NeverRan count, when it has one.
func neverRan(t Task) string {
	if t.NeverRan == 0 {
		return ""
	}
	return fmt.Sprintf(" never_ran=%d", t.NeverRan)
}

func (s *script) addJob(name string) {
	for _, j := range s.jobs {
		if j == name {
			return
		}
	}
	s.jobs = append(s.jobs, name)
}

// jobStatuses are the statuses of a job's stored tasks, and their
// description ("t1 KILLED, t2 PENDING"), by task number.
func (s *script) jobStatuses(name string) ([]Status, string) {
	var ids []string
	for id, j := range s.taskJob {
		if tk, ok := s.tasks[id]; j == name && ok && tk.Status != Deleted {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(a, b int) bool {
		x, _ := strconv.Atoi(ids[a][1:])
		y, _ := strconv.Atoi(ids[b][1:])
		return x < y
	})
	var sts []Status
	var desc []string
	for _, id := range ids {
		sts = append(sts, s.tasks[id].Status)
		desc = append(desc, id+" "+s.tasks[id].Status.String())
	}
	return sts, strings.Join(desc, ", ")
}

func (s *script) describeJob(name string) string {
	sts, desc := s.jobStatuses(name)
	verdict := "does not exist"
	if JobExists(s.cron[name], sts...) {
		verdict = "exists"
	}
	var why []string
	if s.cron[name] {
		why = append(why, "cron")
	}
	if desc == "" {
		desc = "no tasks"
	}
	why = append(why, desc)
	return fmt.Sprintf("job %s %s (%s)", name, verdict, strings.Join(why, "; "))
}

// reportJobs prints the jobs whose existence changed.
func (s *script) reportJobs() {
	for _, name := range s.jobs {
		sts, _ := s.jobStatuses(name)
		now := JobExists(s.cron[name], sts...)
		if now == s.exists[name] {
			continue
		}
		s.exists[name] = now
		if now {
			s.emit("job %s exists", name)
		} else {
			s.emit("job %s no longer exists", name)
		}
	}
}
