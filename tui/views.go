package tui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// view is one screen of the stack.
type view interface {
	base() *viewBase
	// title is the view's breadcrumb.
	title() string
	// fetch returns the loader for the view's data as it is now (nil:
	// nothing to load). It runs off the UI goroutine, so it captures what
	// it needs and touches no view state.
	fetch(src Source) func(ctx context.Context) (any, error)
	// apply takes the loader's data.
	apply(m *Model, data any) tea.Cmd
	render(m *Model, w, h int) string
	// status is the status line when nothing else is shown there.
	status(m *Model) string
	// key handles the view's own keys; false passes the key on to the
	// list navigation.
	key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool)
	bindings(m *Model) []key.Binding
}

// viewBase is the state every view has.
type viewBase struct {
	id, gen int
	loading bool
	loaded  bool // data arrived at least once
	err     error
	updated time.Time
	list    *list // the view's list, if it has one
}

func (b *viewBase) base() *viewBase { return b }

// query and setQuery make list views filterable.
func (b *viewBase) query() string {
	if b.list == nil {
		return ""
	}
	return b.list.filter
}

func (b *viewBase) setQuery(q string) {
	if b.list != nil {
		b.list.setFilter(q)
	}
}

func (b *viewBase) listStatus(noun string) string {
	l := b.list
	s := plural(len(l.all), noun)
	if l.filter != "" {
		s = fmt.Sprintf("%d of %s match %q", len(l.rows), plural(len(l.all), noun), l.filter)
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "ry"):
		noun = strings.TrimSuffix(noun, "y") + "ie"
	case strings.HasSuffix(noun, "s"):
		noun += "e"
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ---- appliance overview ----

type overviewData struct {
	status    *status.Appliance
	statusErr error
	agents    []Agent
	agentsErr error
}

type overviewView struct {
	viewBase
	data   overviewData
	comps  *list
	agents *list
}

func newOverview() *overviewView {
	v := &overviewView{
		comps: newList(column{title: "COMPONENT", width: 10}, column{title: "HEALTH", width: 9, style: stateStyle},
			column{title: "ADDRESS", width: 21, flex: true}, column{title: "PID", width: 7, right: true},
			column{title: "UPTIME", width: 7, right: true}, column{title: "RESTARTS", width: 8, right: true}),
		agents: newList(column{title: "AGENT", width: 16, flex: true}, column{title: "STATE", width: 8, style: stateStyle},
			column{title: "CPUS", width: 11, right: true}, column{title: "MEM MB", width: 13, right: true},
			column{title: "DISK MB", width: 15, right: true}),
	}
	v.comps.noCursor, v.agents.noCursor = true, true
	return v
}

func (v *overviewView) title() string { return "overview" }

func (v *overviewView) fetch(src Source) func(ctx context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		var d overviewData
		d.status, d.statusErr = src.Status(ctx)
		d.agents, d.agentsErr = src.Agents(ctx)
		return d, nil
	}
}

func (v *overviewView) apply(m *Model, data any) tea.Cmd {
	v.data = data.(overviewData)
	var rows []row
	if st := v.data.status; st != nil {
		for _, c := range st.Components {
			pid, up := "-", "-"
			if c.PID > 0 {
				pid = strconv.Itoa(c.PID)
				up = age(time.Duration(c.UptimeSeconds * float64(time.Second)))
			}
			rows = append(rows, row{key: c.Name, cells: []string{c.Name, string(c.Health), c.Address, pid, up, strconv.Itoa(c.Restarts)}})
		}
	}
	v.comps.setRows(rows)
	rows = nil
	for _, a := range v.data.agents {
		state := "active"
		if !a.Active {
			state = "inactive"
		}
		rows = append(rows, row{key: a.ID, cells: []string{a.Hostname, state,
			fmt.Sprintf("%s / %s", num(a.UsedCPUs), num(a.CPUs)),
			fmt.Sprintf("%s / %s", num(a.UsedMem), num(a.MemMB)),
			fmt.Sprintf("%s / %s", num(a.UsedDisk), num(a.DiskMB))}})
	}
	v.agents.setRows(rows)
	return nil
}

func (v *overviewView) render(m *Model, w, h int) string {
	if !v.loaded {
		return dimStyle.Render("Loading the appliance's status…")
	}
	var b strings.Builder
	st := v.data.status
	switch {
	case v.data.statusErr != nil && errors.Is(v.data.statusErr, ErrUnavailable):
		b.WriteString(dimStyle.Render("No appliance status for this cluster (--status-cmd can fetch one).") + "\n")
	case v.data.statusErr != nil:
		b.WriteString(errorStyle.Render("status: "+oneLine(v.data.statusErr.Error())) + "\n")
	case !st.Running:
		b.WriteString(errorStyle.Render("The appliance is not running") + dimStyle.Render(" (data dir "+st.DataDir+")") + "\n")
	default:
		health := okStyle.Render("healthy")
		switch {
		case st.Supervisor != nil && !st.Supervisor.Ready:
			health = warnStyle.Render("starting")
		case !st.Healthy:
			health = errorStyle.Render("UNHEALTHY")
		}
		line := "Appliance " + st.Cluster + " " + health
		if s := st.Supervisor; s != nil {
			line += fmt.Sprintf(" · up %s · supervisor pid %d %s", age(time.Duration(s.UptimeSeconds*float64(time.Second))), s.PID, s.Version)
		}
		b.WriteString(line + "\n")
		iso := st.Isolation
		if iso == "" {
			iso = "unknown"
		}
		if st.IsolationReason != "" {
			iso += " (" + st.IsolationReason + ")"
		}
		b.WriteString(dimStyle.Render("data dir "+st.DataDir+" · isolation "+iso) + "\n")
		b.WriteString("\n" + v.comps.render(w, len(v.comps.rows)+1) + "\n")
		for _, c := range st.Components {
			if c.LastError != "" {
				b.WriteString(errorStyle.Render(clip("  ! "+c.Name+": "+oneLine(c.LastError), w)) + "\n")
			}
		}
	}
	switch {
	case v.data.agentsErr != nil && errors.Is(v.data.agentsErr, ErrUnavailable):
	case v.data.agentsErr != nil:
		b.WriteString("\n" + errorStyle.Render("master: "+oneLine(v.data.agentsErr.Error())) + "\n")
	default:
		b.WriteString("\n" + v.agents.render(w, len(v.agents.rows)+1) + "\n")
	}
	return fit(strings.TrimRight(b.String(), "\n"), w, h)
}

func (v *overviewView) status(m *Model) string {
	n := 0
	if v.data.status != nil {
		n = len(v.data.status.Components)
	}
	return plural(n, "component") + ", " + plural(len(v.data.agents), "agent") + " · enter: jobs"
}

func (v *overviewView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	if key.Matches(msg, m.keys.Enter) {
		return m.push(newJobs()), true
	}
	return nil, false
}

func (v *overviewView) bindings(m *Model) []key.Binding { return []key.Binding{m.keys.Jobs} }

// ---- jobs ----

type jobsData struct {
	jobs  []api.JobConfiguration
	tasks []api.ScheduledTask
}

type jobsView struct {
	viewBase
	keys map[string]api.JobKey
}

func newJobs() *jobsView {
	v := &jobsView{}
	v.list = newList(column{title: "ROLE", width: 10}, column{title: "ENV", width: 8}, column{title: "JOB", width: 16},
		column{title: "INST", width: 4, right: true}, column{title: "INSTANCE STATES", width: 20, flex: true})
	return v
}

func (v *jobsView) title() string { return "jobs" }

func (v *jobsView) fetch(src Source) func(ctx context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		jobs, err := src.Jobs(ctx)
		if err != nil {
			return nil, err
		}
		tasks, err := src.Tasks(ctx, api.TaskQuery{})
		if err != nil {
			return nil, err
		}
		return jobsData{jobs, tasks}, nil
	}
}

func keyString(k api.JobKey) string { return k.Role + "/" + k.Environment + "/" + k.Name }

func (v *jobsView) apply(m *Model, data any) tea.Cmd {
	d := data.(jobsData)
	byJob := map[api.JobKey][]api.ScheduledTask{}
	for _, t := range d.tasks {
		k := t.AssignedTask.Task.Job
		byJob[k] = append(byJob[k], t)
	}
	counts := map[api.JobKey]int{}
	crons := map[api.JobKey]string{}
	for _, j := range d.jobs {
		counts[j.Key] = j.InstanceCount
		crons[j.Key] = j.CronSchedule
		if _, ok := byJob[j.Key]; !ok {
			byJob[j.Key] = nil
		}
	}
	keys := make([]api.JobKey, 0, len(byJob))
	for k := range byJob {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keyString(keys[i]) < keyString(keys[j]) })
	v.keys = map[string]api.JobKey{}
	var rows []row
	for _, k := range keys {
		current := currentTasks(byJob[k])
		n, ok := counts[k]
		if !ok {
			n = len(current)
		}
		states := map[string]int{}
		for _, t := range current {
			states[t.Status]++
		}
		s := keyString(k)
		v.keys[s] = k
		text := stateCounts(states)
		if c := crons[k]; c != "" && len(current) == 0 {
			text = "cron " + c
		}
		rows = append(rows, row{key: s, cells: []string{k.Role, k.Environment, k.Name, strconv.Itoa(n), text}})
	}
	v.list.setRows(rows)
	return nil
}

// stateOrder is the order instance states are counted in.
var stateOrder = []string{"RUNNING", "STARTING", "ASSIGNED", "PENDING", "THROTTLED", "KILLING", "RESTARTING", "DRAINING",
	"PREEMPTING", "PARTITIONED", "FINISHED", "FAILED", "KILLED", "LOST"}

func stateCounts(states map[string]int) string {
	var parts []string
	done := map[string]bool{}
	for _, s := range stateOrder {
		if n := states[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
		done[s] = true
	}
	var rest []string
	for s := range states {
		if !done[s] {
			rest = append(rest, s)
		}
	}
	sort.Strings(rest)
	for _, s := range rest {
		parts = append(parts, fmt.Sprintf("%d %s", states[s], s))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func lastEvent(t api.ScheduledTask) (api.TaskEvent, bool) {
	if n := len(t.TaskEvents); n > 0 {
		return t.TaskEvents[n-1], true
	}
	return api.TaskEvent{}, false
}

func firstEvent(t api.ScheduledTask) int64 {
	if len(t.TaskEvents) > 0 {
		return t.TaskEvents[0].Timestamp
	}
	return 0
}

// currentTasks is each instance's current task: its active one, else its
// latest.
func currentTasks(ts []api.ScheduledTask) map[int]api.ScheduledTask {
	out := map[int]api.ScheduledTask{}
	for _, t := range ts {
		i := t.AssignedTask.InstanceID
		old, ok := out[i]
		switch {
		case !ok:
		case state.NameIn(old.Status, state.Status.Active) && !state.NameIn(t.Status, state.Status.Active):
			continue
		case state.NameIn(t.Status, state.Status.Active) && !state.NameIn(old.Status, state.Status.Active):
		default:
			oe, _ := lastEvent(old)
			ne, _ := lastEvent(t)
			if ne.Timestamp < oe.Timestamp || (ne.Timestamp == oe.Timestamp && t.AssignedTask.TaskID < old.AssignedTask.TaskID) {
				continue
			}
		}
		out[i] = t
	}
	return out
}

func (v *jobsView) render(m *Model, w, h int) string {
	if !v.loaded {
		return dimStyle.Render("Loading jobs…")
	}
	return v.list.render(w, h)
}

func (v *jobsView) status(m *Model) string { return v.listStatus("job") + " by role/env" }

func (v *jobsView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	if key.Matches(msg, m.keys.Enter) {
		if r, ok := v.list.current(); ok {
			return m.push(newInstances(v.keys[r.key])), true
		}
		return nil, true
	}
	return nil, false
}

func (v *jobsView) bindings(m *Model) []key.Binding {
	return []key.Binding{m.keys.Enter, m.keys.Filter, m.keys.Up, m.keys.Down}
}

// ---- a job's instances ----

type instancesView struct {
	viewBase
	job     api.JobKey
	current map[int]api.ScheduledTask
}

func newInstances(job api.JobKey) *instancesView {
	v := &instancesView{job: job}
	v.list = newList(column{title: "INST", width: 4, right: true}, column{title: "STATE", width: 10, style: stateStyle},
		column{title: "HOST", width: 15}, column{title: "AGE", width: 5, right: true},
		column{title: "LAST EVENT", width: 20, flex: true})
	return v
}

func (v *instancesView) title() string { return keyString(v.job) }

func (v *instancesView) fetch(src Source) func(ctx context.Context) (any, error) {
	job := v.job
	return func(ctx context.Context) (any, error) {
		return src.Tasks(ctx, api.TaskQuery{Role: job.Role, Environment: job.Environment, JobName: job.Name})
	}
}

func (v *instancesView) apply(m *Model, data any) tea.Cmd {
	v.current = currentTasks(data.([]api.ScheduledTask))
	ids := make([]int, 0, len(v.current))
	for i := range v.current {
		ids = append(ids, i)
	}
	sort.Ints(ids)
	now := m.opts.Now()
	var rows []row
	for _, i := range ids {
		t := v.current[i]
		host := t.AssignedTask.SlaveHost
		if host == "" {
			host = "-"
		}
		rows = append(rows, row{key: strconv.Itoa(i), cells: []string{strconv.Itoa(i), t.Status, host,
			age(now.Sub(time.UnixMilli(firstEvent(t)))), eventText(now, t)}})
	}
	v.list.setRows(rows)
	return nil
}

// eventText is "12s ago RUNNING: message" for a task's last event.
func eventText(now time.Time, t api.ScheduledTask) string {
	e, ok := lastEvent(t)
	if !ok {
		return "-"
	}
	s := age(now.Sub(time.UnixMilli(e.Timestamp))) + " ago " + e.Status
	if e.Message != "" {
		s += ": " + oneLine(e.Message)
	}
	return s
}

func (v *instancesView) selected() (api.ScheduledTask, bool) {
	r, ok := v.list.current()
	if !ok {
		return api.ScheduledTask{}, false
	}
	i, _ := strconv.Atoi(r.key)
	t, ok := v.current[i]
	return t, ok
}

func (v *instancesView) render(m *Model, w, h int) string {
	if !v.loaded {
		return dimStyle.Render("Loading instances…")
	}
	states := map[string]int{}
	var cfg *api.TaskConfig
	for _, t := range v.current {
		states[t.Status]++
		c := t.AssignedTask.Task
		cfg = &c
	}
	head := stateCounts(states)
	if cfg != nil {
		kind := "batch"
		if cfg.IsService {
			kind = "service"
		}
		head += " · " + kind + resourcesText(*cfg)
	}
	return clip(head, w) + "\n\n" + v.list.render(w, h-2)
}

func resourcesText(c api.TaskConfig) string {
	var parts []string
	for _, r := range c.Resources {
		switch {
		case r.NumCpus != nil:
			parts = append(parts, "cpu "+num(*r.NumCpus))
		case r.RAMMb != nil:
			parts = append(parts, fmt.Sprintf("ram %dMB", *r.RAMMb))
		case r.DiskMb != nil:
			parts = append(parts, fmt.Sprintf("disk %dMB", *r.DiskMb))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " · " + strings.Join(parts, " ")
}

func (v *instancesView) status(m *Model) string { return v.listStatus("instance") }

func (v *instancesView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	t, ok := v.selected()
	switch {
	case key.Matches(msg, m.keys.Enter):
		if ok {
			return m.push(newTask(v.job, t)), true
		}
	case key.Matches(msg, m.keys.Logs):
		if ok {
			return m.openSandbox(t, newLog(refOf(t), "", -1, "stdout")), true
		}
	case key.Matches(msg, m.keys.Files):
		if ok {
			return m.openSandbox(t, newFiles(refOf(t), "")), true
		}
	case key.Matches(msg, m.keys.Kill):
		if ok {
			return m.askKill(v.job, t.AssignedTask.InstanceID), true
		}
	case key.Matches(msg, m.keys.Restart):
		if ok {
			return m.askRestart(v.job, t.AssignedTask.InstanceID), true
		}
	default:
		return nil, false
	}
	return nil, true
}

func (v *instancesView) bindings(m *Model) []key.Binding {
	return []key.Binding{m.keys.Enter, m.keys.Logs, m.keys.Files, m.keys.Kill, m.keys.Restart, m.keys.Filter}
}

// openSandbox opens v, a view of t's logs or sandbox files, once the
// observer has t. When it has not, there is no sandbox to offer (not made
// yet, or removed by the agent's garbage collection): the status line
// says so instead.
func (m *Model) openSandbox(t api.ScheduledTask, v view) tea.Cmd {
	src, from, timeout, ref, status := m.src, m.top().base().id, m.opts.Timeout, refOf(t), t.Status
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := src.Task(ctx, ref); errors.Is(err, ErrNotObserved) {
			return openMsg{from: from, why: noSandbox(status)}
		}
		return openMsg{from: from, v: v}
	}
}

// noSandbox says why a task in state status that the observer does not
// know has no sandbox to show.
func noSandbox(status string) string {
	if state.NameIn(status, state.Status.Active) {
		return "no sandbox yet: the observer does not know this task yet"
	}
	return "no sandbox: the agent removed it (sandbox garbage collection)"
}

func refOf(t api.ScheduledTask) TaskRef {
	return TaskRef{ID: t.AssignedTask.TaskID, Host: t.AssignedTask.SlaveHost}
}

func (m *Model) askKill(job api.JobKey, inst int) tea.Cmd {
	src := m.src
	return m.askConfirm(fmt.Sprintf("Kill instance %d of %s?", inst, keyString(job)), func(ctx context.Context) (string, error) {
		if err := src.Kill(ctx, job, []int{inst}); err != nil {
			return "", err
		}
		return fmt.Sprintf("asked the scheduler to kill %s/%d", keyString(job), inst), nil
	})
}

func (m *Model) askRestart(job api.JobKey, inst int) tea.Cmd {
	src := m.src
	return m.askConfirm(fmt.Sprintf("Restart instance %d of %s?", inst, keyString(job)), func(ctx context.Context) (string, error) {
		if err := src.Restart(ctx, job, []int{inst}); err != nil {
			return "", err
		}
		return fmt.Sprintf("asked the scheduler to restart %s/%d", keyString(job), inst), nil
	})
}

// ---- a task and its processes ----

type taskData struct {
	task   *api.ScheduledTask
	obs    *ObservedTask
	obsErr error
}

type taskView struct {
	viewBase
	job    api.JobKey
	task   api.ScheduledTask
	obs    *ObservedTask
	oerr   error
	picked bool // the cursor was put on a running process
}

func newTask(job api.JobKey, t api.ScheduledTask) *taskView {
	v := &taskView{job: job, task: t}
	v.list = newList(column{title: "PROCESS", width: 16, flex: true}, column{title: "STATE", width: 9, style: stateStyle},
		column{title: "RUNS", width: 4, right: true}, column{title: "CPU", width: 5, right: true},
		column{title: "MEM", width: 9, right: true}, column{title: "STARTED", width: 9, right: true},
		column{title: "EXIT", width: 4, right: true})
	return v
}

func (v *taskView) title() string { return "instance " + strconv.Itoa(v.task.AssignedTask.InstanceID) }

func (v *taskView) fetch(src Source) func(ctx context.Context) (any, error) {
	ref := refOf(v.task)
	return func(ctx context.Context) (any, error) {
		var d taskData
		ts, err := src.Tasks(ctx, api.TaskQuery{TaskIDs: []string{ref.ID}})
		if err != nil {
			return nil, err
		}
		if len(ts) > 0 {
			d.task = &ts[0]
		}
		d.obs, d.obsErr = src.Task(ctx, ref)
		return d, nil
	}
}

func (v *taskView) apply(m *Model, data any) tea.Cmd {
	d := data.(taskData)
	if d.task != nil {
		v.task = *d.task
	}
	v.obs, v.oerr = d.obs, d.obsErr
	now := m.opts.Now()
	var rows []row
	if v.obs != nil {
		procs := append([]Process(nil), v.obs.Processes...)
		// In the order they started; those that never ran last.
		sort.SliceStable(procs, func(i, j int) bool {
			a, b := procs[i], procs[j]
			if (a.Run < 0) != (b.Run < 0) {
				return b.Run < 0
			}
			if a.Start != b.Start {
				return a.Start < b.Start
			}
			return a.Name < b.Name
		})
		v.obs.Processes = procs
		if !v.picked {
			// The cursor starts on the first running process.
			v.picked = true
			for _, p := range procs {
				if p.State == "RUNNING" {
					v.list.selected = p.Name
					break
				}
			}
		}
		for _, p := range procs {
			runs, cpu, mem, started, exit := "0", "-", "-", "-", ""
			if p.Run >= 0 {
				runs = strconv.Itoa(p.Run + 1)
			}
			if p.Active {
				cpu, mem = fmt.Sprintf("%.2f", p.CPU), bytesText(p.RAM)
			}
			if p.Start > 0 {
				started = age(now.Sub(secsTime(p.Start))) + " ago"
			}
			if p.Code != nil {
				exit = strconv.Itoa(*p.Code)
			}
			rows = append(rows, row{key: p.Name, cells: []string{p.Name, p.State, runs, cpu, mem, started, exit}})
		}
	}
	v.list.setRows(rows)
	return nil
}

func secsTime(s float64) time.Time { return time.UnixMilli(int64(s * 1000)) }

func (v *taskView) render(m *Model, w, h int) string {
	if !v.loaded {
		return dimStyle.Render("Loading the task…")
	}
	t := v.task
	now := m.opts.Now()
	var b strings.Builder
	b.WriteString(clip("Task "+t.AssignedTask.TaskID, w) + "\n")
	host := t.AssignedTask.SlaveHost
	if host == "" {
		host = "no host yet"
	}
	line := fmt.Sprintf("  instance %d · %s on %s · age %s", t.AssignedTask.InstanceID, stateStyle(t.Status).Render(t.Status), host,
		age(now.Sub(time.UnixMilli(firstEvent(t)))))
	if t.FailureCount > 0 {
		line += fmt.Sprintf(" · %d failures", t.FailureCount)
	}
	b.WriteString(clip(line, w) + "\n")
	b.WriteString(clip("  last event "+eventText(now, t), w) + "\n")
	if len(t.AssignedTask.AssignedPorts) > 0 {
		var ps []string
		for name, p := range t.AssignedTask.AssignedPorts {
			ps = append(ps, fmt.Sprintf("%s=%d", name, p))
		}
		sort.Strings(ps)
		b.WriteString(clip("  ports "+strings.Join(ps, " "), w) + "\n")
	}
	switch {
	case v.obs != nil:
		o := v.obs
		b.WriteString(clip(fmt.Sprintf("  usage cpu %.2f · ram %s · disk %s · thermos %s", o.CPU, bytesText(o.RAM), bytesText(o.Disk), o.State), w) + "\n")
	case errors.Is(v.oerr, ErrNotObserved):
		b.WriteString(dimStyle.Render(clip("  "+noSandbox(t.Status), w)) + "\n")
	case v.oerr != nil:
		b.WriteString(errorStyle.Render(clip("  observer: "+oneLine(v.oerr.Error()), w)) + "\n")
	}
	head := strings.Count(b.String(), "\n")
	if v.obs != nil {
		b.WriteString("\n" + v.list.render(w, h-head-1))
	}
	return b.String()
}

func (v *taskView) status(m *Model) string {
	if v.obs == nil {
		return "no processes to show"
	}
	return v.listStatus("process")
}

// unobserved reports whether the observer does not know the task: then it
// has no sandbox, and no logs or files are offered.
func (v *taskView) unobserved() bool { return v.obs == nil && errors.Is(v.oerr, ErrNotObserved) }

func (v *taskView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	ref := refOf(v.task)
	switch {
	case v.unobserved() && (key.Matches(msg, m.keys.Enter) || key.Matches(msg, m.keys.Logs) || key.Matches(msg, m.keys.Files)):
		m.flash, m.flashErr = noSandbox(v.task.Status), false
		return nil, true
	case key.Matches(msg, m.keys.Enter), key.Matches(msg, m.keys.Logs):
		r, ok := v.list.current()
		if !ok {
			return m.push(newLog(ref, "", -1, "stdout")), true
		}
		for _, p := range v.obs.Processes {
			if p.Name == r.key {
				if p.Run < 0 {
					m.flash, m.flashErr = p.Name+" has not run yet: no logs", false
					return nil, true
				}
				return m.push(newLog(ref, p.Name, p.Run, "stdout")), true
			}
		}
	case key.Matches(msg, m.keys.Files):
		return m.push(newFiles(ref, "")), true
	case key.Matches(msg, m.keys.Kill):
		return m.askKill(v.job, v.task.AssignedTask.InstanceID), true
	case key.Matches(msg, m.keys.Restart):
		return m.askRestart(v.job, v.task.AssignedTask.InstanceID), true
	default:
		return nil, false
	}
	return nil, true
}

func (v *taskView) bindings(m *Model) []key.Binding {
	if v.unobserved() {
		return []key.Binding{m.keys.Kill, m.keys.Restart}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/l", "logs")), m.keys.Files, m.keys.Kill, m.keys.Restart}
}

// ---- sandbox files ----

type filesView struct {
	viewBase
	ref       TaskRef
	dir       string
	entries   map[string]observerapi.DirEntry
	truncated bool // the observer listed only the first observerapi.MaxListing
}

func newFiles(ref TaskRef, dir string) *filesView {
	v := &filesView{ref: ref, dir: dir}
	v.list = newList(column{title: "NAME", width: 20, flex: true}, column{title: "SIZE", width: 9, right: true},
		column{title: "MODE", width: 10}, column{title: "MODIFIED", width: 23})
	return v
}

func (v *filesView) title() string {
	if v.dir == "" {
		return "sandbox"
	}
	return path.Base(v.dir)
}

func (v *filesView) fetch(src Source) func(ctx context.Context) (any, error) {
	ref, dir := v.ref, v.dir
	return func(ctx context.Context) (any, error) { return src.Dir(ctx, ref, dir) }
}

func (v *filesView) apply(m *Model, data any) tea.Cmd {
	l := data.(observerapi.Listing)
	v.entries, v.truncated = map[string]observerapi.DirEntry{}, l.Truncated
	var rows []row
	for _, e := range l.Entries {
		v.entries[e.Name] = e
		name, size := e.Name, bytesText(e.Size)
		switch {
		case e.Outside():
			name += " ⇢ outside"
		case e.IsDir():
			name, size = name+"/", ""
		}
		rows = append(rows, row{key: e.Name, cells: []string{name, size, e.Mode, mtimeText(e.Mtime)}})
	}
	v.list.setRows(rows)
	return nil
}

// mtimeText is a listing's mtime (seconds since the epoch) as the
// observer's pages show it.
func mtimeText(secs float64) string {
	if secs == 0 {
		return ""
	}
	return time.UnixMilli(int64(math.Round(secs * 1000))).UTC().Format("2006-01-02 15:04:05 UTC")
}

func (v *filesView) render(m *Model, w, h int) string {
	if !v.loaded {
		return dimStyle.Render("Loading the sandbox…")
	}
	head := "Sandbox of " + v.ref.ID + " /" + v.dir
	if v.truncated {
		head += fmt.Sprintf(" (only the first %d entries)", len(v.entries))
	}
	return clip(head, w) + "\n" + v.list.render(w, h-1)
}

func (v *filesView) status(m *Model) string { return v.listStatus("entry") }

func (v *filesView) key(m *Model, msg tea.KeyMsg) (tea.Cmd, bool) {
	if !key.Matches(msg, m.keys.Enter) {
		return nil, false
	}
	r, ok := v.list.current()
	if !ok {
		return nil, true
	}
	e := v.entries[r.key]
	switch {
	case e.Outside():
		m.flash, m.flashErr = e.Name+" leads out of the sandbox", true
	case e.IsDir():
		return m.push(newFiles(v.ref, e.Path)), true
	case e.IsFile():
		return m.push(newFile(v.ref, e.Path)), true
	default:
		m.flash, m.flashErr = e.Name+" is not a regular file ("+e.Mode+")", true
	}
	return nil, true
}

func (v *filesView) bindings(m *Model) []key.Binding {
	return []key.Binding{m.keys.Enter, m.keys.Filter, m.keys.Up, m.keys.Down}
}

// ---- formatting ----

// age is a compact duration: 42s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// num prints a resource amount without needless decimals.
func num(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}
