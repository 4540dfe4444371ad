package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// The pages' view models: everything is formatted here, so the templates
// only lay values out.

func roleHref(role string) string { return "/scheduler/" + url.PathEscape(role) }

func envHref(role, env string) string { return roleHref(role) + "/" + url.PathEscape(env) }

func jobHref(k api.JobKey) string {
	return envHref(k.Role, k.Environment) + "/" + url.PathEscape(k.Name)
}

func instanceHref(k api.JobKey, instance int) string {
	return jobHref(k) + "/" + strconv.Itoa(instance)
}

func taskHref(k api.JobKey, taskID string) string {
	return jobHref(k) + "/task/" + url.PathEscape(taskID)
}

// crumbs are the breadcrumbs down to the key's non-empty parts; the last
// one is the current page, unless more are appended.
func (h *handler) crumbs(k api.JobKey, more ...crumb) []crumb {
	cs := []crumb{{Label: h.src.Cluster(), Href: "/scheduler"}}
	if k.Role != "" {
		cs = append(cs, crumb{Label: k.Role, Href: roleHref(k.Role)})
	}
	if k.Environment != "" {
		cs = append(cs, crumb{Label: k.Environment, Href: envHref(k.Role, k.Environment)})
	}
	if k.Name != "" {
		cs = append(cs, crumb{Label: k.Name, Href: jobHref(k)})
	}
	cs = append(cs, more...)
	cs[len(cs)-1].Href = ""
	return cs
}

// timeView is a time as UTC text and as an age relative to Config.Now.
type timeView struct {
	UTC, ISO, Age string
}

func (h *handler) at(ms int64) timeView {
	if ms == 0 {
		return timeView{}
	}
	t := time.UnixMilli(ms).UTC()
	return timeView{UTC: t.Format("2006-01-02 15:04:05"), ISO: t.Format(time.RFC3339Nano), Age: age(h.cfg.Now().Sub(t))}
}

// age renders a duration as "12s ago", "3m ago", "5h ago", "2d ago" (or
// "in 3m" for a time in the future, as a skewed clock can give).
func age(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%dh", int64(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int64(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// statusClass is the CSS class of a status's group: status-pending
// (INIT, PENDING, THROTTLED), status-active (the other active states),
// status-finished (FINISHED), status-failed (FAILED, KILLED, LOST), or
// status-unknown.
func statusClass(status string) string {
	st, err := state.ParseStatus(status)
	switch {
	case err != nil:
		return "status-unknown"
	case st == state.Init || st == state.Pending || st == state.Throttled:
		return "status-pending"
	case st == state.Finished:
		return "status-finished"
	case st.Terminal():
		return "status-failed"
	case st.Active():
		return "status-active"
	}
	return "status-unknown"
}

func terminal(status string) bool {
	st, err := state.ParseStatus(status)
	return err == nil && st.Terminal()
}

// --- /scheduler -----------------------------------------------------------

type roleRow struct {
	Role, Href string
	Jobs, Cron int
}

func (h *handler) roles() *page {
	byRole := map[string]*roleRow{}
	var rows []*roleRow
	for _, j := range h.src.Jobs("") {
		r := byRole[j.Key.Role]
		if r == nil {
			r = &roleRow{Role: j.Key.Role, Href: roleHref(j.Key.Role)}
			byRole[j.Key.Role] = r
			rows = append(rows, r)
		}
		if j.CronSchedule != "" {
			r.Cron++
		} else {
			r.Jobs++
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Role < rows[j].Role })
	return &page{Cluster: h.src.Cluster(), Kind: "roles", template: "roles", Heading: "Roles",
		Crumbs: h.crumbs(api.JobKey{}), Data: rows}
}

// --- /scheduler/<role>[/<env>] ----------------------------------------------

type jobRow struct {
	Name, Href, Cron string
	Instances        int
	Stats            api.JobStats
}

type envGroup struct {
	Environment, Href string
	Jobs              []jobRow
}

type jobsView struct {
	Role, Environment string // Environment is "" on the role page
	Groups            []*envGroup
}

func (h *handler) role(role, env string) *page {
	v := jobsView{Role: role, Environment: env}
	byEnv := map[string]*envGroup{}
	for _, s := range h.src.JobSummaries(role) {
		k := s.Job.Key
		if k.Role != role || env != "" && k.Environment != env {
			continue
		}
		g := byEnv[k.Environment]
		if g == nil {
			g = &envGroup{Environment: k.Environment, Href: envHref(role, k.Environment)}
			byEnv[k.Environment] = g
			v.Groups = append(v.Groups, g)
		}
		g.Jobs = append(g.Jobs, jobRow{Name: k.Name, Href: jobHref(k), Cron: s.Job.CronSchedule,
			Instances: s.Job.InstanceCount, Stats: s.Stats})
	}
	sort.Slice(v.Groups, func(i, j int) bool { return v.Groups[i].Environment < v.Groups[j].Environment })
	for _, g := range v.Groups {
		sort.Slice(g.Jobs, func(i, j int) bool { return g.Jobs[i].Name < g.Jobs[j].Name })
	}
	p := &page{Cluster: h.src.Cluster(), Kind: "role", template: "jobs", Heading: "Jobs of role " + role,
		Crumbs: h.crumbs(api.JobKey{Role: role, Environment: env}), Data: v}
	if env != "" {
		p.Kind, p.Heading = "environment", fmt.Sprintf("Jobs of role %s in %s", role, env)
	}
	return p
}

// --- /scheduler/<role>/<env>/<job> ------------------------------------------

// configView summarizes a TaskConfig (and the job's instance count and cron
// schedule when it comes from a JobConfiguration).
type configView struct {
	Instances       int
	HasInstances    bool
	CPUs            string
	RAM, Disk       string
	Ports           string
	IsService       bool
	Tier            string
	MaxTaskFailures int
	Production      bool
	Cron            string
	Owner           string
	Contact         string
}

func configSummary(c api.TaskConfig) *configView {
	cpus, ram, disk, ports := c.Scalars()
	if len(c.Resources) == 0 { // an old-style config with the scalar fields only
		cpus, ram, disk = c.NumCpus, c.RAMMb, c.DiskMb
	}
	return &configView{
		CPUs:            strconv.FormatFloat(cpus, 'g', -1, 64),
		RAM:             fmt.Sprintf("%d MB", ram),
		Disk:            fmt.Sprintf("%d MB", disk),
		Ports:           strings.Join(ports, ", "),
		IsService:       c.IsService,
		Tier:            c.Tier,
		MaxTaskFailures: c.MaxTaskFailures,
		Production:      c.Production,
		Owner:           c.Owner.User,
		Contact:         c.ContactEmail,
	}
}

func jobSummary(j api.JobConfiguration) *configView {
	v := configSummary(j.TaskConfig)
	v.Instances, v.HasInstances, v.Cron = j.InstanceCount, true, j.CronSchedule
	if v.Owner == "" {
		v.Owner = j.Owner.User
	}
	return v
}

// taskRow is a task in a table of tasks.
type taskRow struct {
	TaskID, Href     string
	Instance         int
	InstanceHref     string
	Status, Class    string
	Host             string
	Updated          timeView
	Message          string
	ObserverHref     string
	AncestorID       string
	AncestorHref     string
	FailureCount     int
	TimesPartitioned int
	// PendingReason is why a PENDING task was not placed (the Source's
	// getPendingReason), "" when unknown.
	PendingReason string
}

func (h *handler) observer(host, taskID string) string {
	if h.cfg.ObserverURL == nil || host == "" {
		return ""
	}
	base := h.cfg.ObserverURL(host)
	if base == "" {
		return ""
	}
	return strings.TrimRight(base, "/") + "/task/" + url.PathEscape(taskID)
}

// pendingReasons returns why each PENDING task among tasks is pending, by
// task id, when the Source can say (a PendingReasonSource).
func (h *handler) pendingReasons(tasks []api.ScheduledTask) map[string]string {
	src, ok := h.src.(PendingReasonSource)
	if !ok {
		return nil
	}
	var q api.TaskQuery
	for _, t := range tasks {
		if t.Status == state.Pending.String() {
			q.TaskIDs = append(q.TaskIDs, t.AssignedTask.TaskID)
		}
	}
	if len(q.TaskIDs) == 0 {
		return nil
	}
	rs, err := src.PendingReasons(q)
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(rs))
	for _, r := range rs {
		out[r.TaskID] = r.Reason
	}
	return out
}

// row is a task's row; reasons are the pending reasons by task id.
func (h *handler) row(t api.ScheduledTask, reasons map[string]string) taskRow {
	at := t.AssignedTask
	k := at.Task.Job
	r := taskRow{
		TaskID: at.TaskID, Href: taskHref(k, at.TaskID),
		Instance: at.InstanceID, InstanceHref: instanceHref(k, at.InstanceID),
		Status: t.Status, Class: statusClass(t.Status),
		Host:         at.SlaveHost,
		ObserverHref: h.observer(at.SlaveHost, at.TaskID),
		AncestorID:   t.AncestorID, FailureCount: t.FailureCount, TimesPartitioned: t.TimesPartitioned,
		PendingReason: reasons[at.TaskID],
	}
	if t.AncestorID != "" {
		r.AncestorHref = taskHref(k, t.AncestorID)
	}
	if n := len(t.TaskEvents); n > 0 {
		last := t.TaskEvents[n-1]
		r.Updated, r.Message = h.at(last.Timestamp), last.Message
	}
	return r
}

func lastChange(t api.ScheduledTask) int64 {
	if n := len(t.TaskEvents); n > 0 {
		return t.TaskEvents[n-1].Timestamp
	}
	return 0
}

// taskTables splits tasks into the active ones (in the Source's order: by
// instance and task id) and the terminal ones, newest first.
type taskTables struct {
	Active, Completed []taskRow
}

func (h *handler) tables(tasks []api.ScheduledTask) taskTables {
	var v taskTables
	reasons := h.pendingReasons(tasks)
	var done []api.ScheduledTask
	for _, t := range tasks {
		if terminal(t.Status) {
			done = append(done, t)
		} else {
			v.Active = append(v.Active, h.row(t, reasons))
		}
	}
	sort.SliceStable(done, func(i, j int) bool { return lastChange(done[i]) > lastChange(done[j]) })
	for _, t := range done {
		v.Completed = append(v.Completed, h.row(t, nil))
	}
	return v
}

type jobView struct {
	Key    api.JobKey
	Config *configView // nil when the scheduler has no configuration for the job
	taskTables
}

// jobTasks returns the job's configuration (nil if none) and tasks; a job
// with neither is a 404.
func (h *handler) jobTasks(k api.JobKey, q api.TaskQuery) (*api.JobConfiguration, []api.ScheduledTask, *httpError) {
	var cfg *api.JobConfiguration
	for _, j := range h.src.Jobs(k.Role) {
		if j.Key == k {
			cfg = &j
			break
		}
	}
	q.Role, q.Environment, q.JobName = k.Role, k.Environment, k.Name
	var tasks []api.ScheduledTask
	for _, t := range h.src.Tasks(q) {
		if t.AssignedTask.Task.Job == k {
			tasks = append(tasks, t)
		}
	}
	if cfg == nil && len(tasks) == 0 {
		return nil, nil, errorf(http.StatusNotFound, "There is no job %s in cluster %s.", k, h.src.Cluster())
	}
	return cfg, tasks, nil
}

func (h *handler) job(k api.JobKey) (*page, *httpError) {
	cfg, tasks, err := h.jobTasks(k, api.TaskQuery{})
	if err != nil {
		return nil, err
	}
	v := jobView{Key: k, taskTables: h.tables(tasks)}
	if cfg != nil {
		v.Config = jobSummary(*cfg)
	}
	return &page{Cluster: h.src.Cluster(), Kind: "job", template: "job", Heading: "Job " + k.String(),
		Crumbs: h.crumbs(k), Data: v}, nil
}

// --- /scheduler/<role>/<env>/<job>/<instance> -------------------------------

type instanceView struct {
	Key      api.JobKey
	Instance int
	taskTables
}

func (h *handler) instance(k api.JobKey, instance int) (*page, *httpError) {
	_, tasks, err := h.jobTasks(k, api.TaskQuery{InstanceIDs: []int{instance}})
	if err != nil {
		return nil, err
	}
	var mine []api.ScheduledTask
	for _, t := range tasks {
		if t.AssignedTask.InstanceID == instance {
			mine = append(mine, t)
		}
	}
	if len(mine) == 0 {
		return nil, errorf(http.StatusNotFound, "Job %s has no tasks for instance %d.", k, instance)
	}
	label := "instance " + strconv.Itoa(instance)
	return &page{Cluster: h.src.Cluster(), Kind: "instance", template: "instance",
		Heading: fmt.Sprintf("Instance %d of %s", instance, k),
		Crumbs:  h.crumbs(k, crumb{Label: label}),
		Data:    instanceView{Key: k, Instance: instance, taskTables: h.tables(mine)}}, nil
}

// --- /scheduler/<role>/<env>/<job>/task/<taskId> -----------------------------

type portView struct {
	Name string
	Port int
	Href string // http://host:port, when the task has a host
}

type eventView struct {
	Time               timeView
	Status, Class      string
	Message, Scheduler string
}

type taskView struct {
	Task           taskRow
	AgentID        string
	Ports          []portView
	Events         []eventView
	Config         *configView
	ExecutorName   string
	ExecutorConfig string
}

func (h *handler) task(k api.JobKey, id string) (*page, *httpError) {
	_, tasks, err := h.jobTasks(k, api.TaskQuery{TaskIDs: []string{id}})
	if err != nil {
		return nil, err
	}
	var t *api.ScheduledTask
	for i := range tasks {
		if tasks[i].AssignedTask.TaskID == id {
			t = &tasks[i]
		}
	}
	if t == nil {
		return nil, errorf(http.StatusNotFound, "Job %s has no task %s.", k, id)
	}
	at := t.AssignedTask
	v := taskView{Task: h.row(*t, h.pendingReasons([]api.ScheduledTask{*t})), AgentID: at.SlaveID, Config: configSummary(at.Task),
		ExecutorName: at.Task.ExecutorConfig.Name, ExecutorConfig: prettyJSON(at.Task.ExecutorConfig.Data)}
	for name, port := range at.AssignedPorts {
		p := portView{Name: name, Port: port}
		if at.SlaveHost != "" {
			p.Href = "http://" + hostPort(at.SlaveHost, port)
		}
		v.Ports = append(v.Ports, p)
	}
	sort.Slice(v.Ports, func(i, j int) bool { return v.Ports[i].Name < v.Ports[j].Name })
	for _, e := range t.TaskEvents {
		v.Events = append(v.Events, eventView{Time: h.at(e.Timestamp), Status: e.Status, Class: statusClass(e.Status),
			Message: e.Message, Scheduler: e.Scheduler})
	}
	return &page{Cluster: h.src.Cluster(), Kind: "task", template: "task", Heading: "Task " + id,
		Crumbs: h.crumbs(k, crumb{Label: "instance " + strconv.Itoa(at.InstanceID), Href: instanceHref(k, at.InstanceID)},
			crumb{Label: id}),
		Data: v}, nil
}

// hostPort joins a host and port, bracketing an IPv6 address.
func hostPort(host string, port int) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port)
}

// prettyJSON indents a JSON document; anything else is returned as it is.
func prettyJSON(s string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(s), "", "  "); err != nil {
		return s
	}
	return buf.String()
}
