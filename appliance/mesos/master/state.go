package master

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// The operator endpoints answer with Mesos' key names, so that tools and UIs
// written for Mesos (and jq one-liners) read them unchanged.
func (m *Master) registerOperator(mux *http.ServeMux) {
	for _, p := range []string{"/master/state", "/master/state.json", "/state", "/state.json"} {
		mux.HandleFunc(p, m.serveState)
	}
	health := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	mux.HandleFunc("/master/health", health)
	mux.HandleFunc("/health", health)
	for _, p := range []string{"/master/slaves", "/slaves"} {
		mux.HandleFunc(p, m.serveSlaves)
	}
	for _, p := range []string{"/master/frameworks", "/frameworks"} {
		mux.HandleFunc(p, m.serveFrameworks)
	}
	for _, p := range []string{"/master/tasks", "/master/tasks.json", "/tasks", "/tasks.json"} {
		mux.HandleFunc(p, m.serveTasks)
	}
	for _, p := range []string{"/master/state-summary", "/state-summary"} {
		mux.HandleFunc(p, m.serveStateSummary)
	}
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		mesosutil.WriteJSON(w, mesosutil.VersionJSON(m.cfg.BuildVersion))
	})
	mux.HandleFunc("/metrics/snapshot", m.serveMetrics)
	redirect := func(w http.ResponseWriter, r *http.Request) {
		// We are always the leader: like Mesos, answer with the leading
		// master's base URL, //hostname:port, scheme-relative.
		info := m.masterInfo()
		w.Header().Set("Location", fmt.Sprintf("//%s:%d", info.GetHostname(), info.GetPort()))
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
	mux.HandleFunc("/master/redirect", redirect)
	mux.HandleFunc("/redirect", redirect)
}

func attributesJSON(attrs []mesos.Attribute) map[string]any {
	out := map[string]any{}
	for _, a := range attrs {
		switch a.GetType() {
		case mesos.SCALAR:
			out[a.Name] = a.GetScalar().GetValue()
		case mesos.TEXT:
			out[a.Name] = a.GetText().GetValue()
		case mesos.RANGES:
			var rs []string
			for _, r := range a.GetRanges().GetRange() {
				rs = append(rs, fmt.Sprintf("%d-%d", r.Begin, r.End))
			}
			out[a.Name] = "[" + strings.Join(rs, ", ") + "]"
		case mesos.SET:
			out[a.Name] = "{" + strings.Join(a.GetSet().GetItem(), ", ") + "}"
		}
	}
	return out
}

func (m *Master) taskJSON(t *task) map[string]any {
	statuses := []map[string]any{}
	for _, s := range t.statuses {
		statuses = append(statuses, map[string]any{"state": s.GetState().String(), "timestamp": s.GetTimestamp()})
	}
	out := map[string]any{
		"id": t.info.TaskID.Value, "name": t.info.Name, "framework_id": t.fw, "slave_id": t.agent,
		"state": t.state.String(), "resources": mesosutil.ResourcesJSON(t.info.Resources), "statuses": statuses,
		"executor_id": "",
		// Not in Mesos' JSON (its operator API has each resource's
		// revocable field): which of the resources are revocable.
		"revocable_resources": mesosutil.ResourcesJSON(revocable(t.info.Resources, true)),
	}
	if t.info.Executor != nil {
		out["executor_id"] = t.info.Executor.ExecutorID.Value
	}
	if t.info.Labels != nil {
		out["labels"] = labelsJSON(t.info.Labels)
	}
	if d := t.info.Discovery; d != nil {
		ports := []map[string]any{}
		for _, p := range d.GetPorts().GetPorts() {
			port := map[string]any{"number": p.Number}
			if p.Name != nil {
				port["name"] = p.GetName()
			}
			if p.Protocol != nil {
				port["protocol"] = p.GetProtocol()
			}
			ports = append(ports, port)
		}
		disc := map[string]any{"visibility": d.Visibility.String(), "ports": map[string]any{"ports": ports}}
		for k, v := range map[string]*string{"name": d.Name, "environment": d.Environment, "location": d.Location, "version": d.Version} {
			if v != nil {
				disc[k] = *v
			}
		}
		out["discovery"] = disc
	}
	return out
}

func labelsJSON(l *mesos.Labels) []map[string]any {
	out := []map[string]any{}
	for _, lb := range l.Labels {
		out = append(out, map[string]any{"key": lb.Key, "value": lb.GetValue()})
	}
	return out
}

func (m *Master) frameworkJSON(fw *framework, active bool) map[string]any {
	tasks, completed := []map[string]any{}, []map[string]any{}
	var used mesos.Resources
	for _, t := range sortedTasks(fw.tasks) {
		tasks = append(tasks, m.taskJSON(t))
		used = used.Plus(t.res...)
	}
	for _, t := range fw.completedTasks {
		completed = append(completed, m.taskJSON(t))
	}
	var offered mesos.Resources
	offers := []map[string]any{}
	for _, o := range m.offers {
		if o.fw == fw.id {
			offered = offered.Plus(o.res...)
			offers = append(offers, map[string]any{"id": o.id, "framework_id": o.fw, "slave_id": o.agent, "resources": mesosutil.ResourcesJSON(o.res)})
		}
	}
	out := m.frameworkSummaryJSON(fw, active, used, offered)
	for k, v := range map[string]any{"tasks": tasks, "unreachable_tasks": []any{}, "completed_tasks": completed,
		"offers": offers, "executors": []any{}} {
		out[k] = v
	}
	return out
}

// frameworkSummaryJSON is a framework without its tasks and offers, as
// /master/state-summary lists it (and /master/state begins it), with the
// resources its tasks use and its offers hold.
func (m *Master) frameworkSummaryJSON(fw *framework, active bool, used, offered mesos.Resources) map[string]any {
	ts := func(t interface{ Unix() int64 }) any {
		if t.Unix() <= 0 {
			return nil
		}
		return t.Unix()
	}
	return map[string]any{
		"id": fw.id, "name": fw.info.Name, "pid": "", "hostname": fw.info.GetHostname(), "user": fw.info.User,
		"role": fw.info.GetRole(), "active": active && fw.sub != nil && !fw.suppressed, "connected": fw.sub != nil,
		"recovered": fw.recovered, "failover_timeout": fw.info.GetFailoverTimeout(), "checkpoint": fw.info.GetCheckpoint(),
		"registered_time": ts(fw.registered), "reregistered_time": ts(fw.reregistered), "unregistered_time": ts(fw.unregistered),
		"webui_url": fw.info.GetWebUiURL(), "resources": mesosutil.ResourcesJSON(used), "used_resources": mesosutil.ResourcesJSON(used),
		"offered_resources": mesosutil.ResourcesJSON(offered),
	}
}

func sortedTasks(ts map[string]*task) []*task {
	out := make([]*task, 0, len(ts))
	for _, t := range ts {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.TaskID.Value < out[j].info.TaskID.Value })
	return out
}

// State is the /master/state document.
func (m *Master) State() map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	info := m.masterInfo()
	slaves := m.slavesLocked("")
	frameworks, completed := m.frameworksLocked("")
	active := 0
	for _, a := range m.agents {
		if a.link != nil {
			active++
		}
	}
	start := float64(m.start.UnixNano()) / 1e9
	out := map[string]any{
		"start_time": start, "elected_time": start, "id": m.id, "pid": info.GetPID(),
		"hostname": info.GetHostname(), "leader": info.GetPID(), "leader_info": info,
		"activated_slaves": active, "deactivated_slaves": len(m.agents) - active,
		"log_dir": "", "flags": m.flagsJSON(),
		"slaves": slaves, "frameworks": frameworks, "completed_frameworks": completed,
		"orphan_tasks": []any{}, "unregistered_frameworks": []any{},
	}
	for k, v := range mesosutil.VersionJSON(m.cfg.BuildVersion) {
		out[k] = v
	}
	return out
}

// slavesLocked is the agents as /master/state and /master/slaves show
// them; only the one with id when id is not empty.
func (m *Master) slavesLocked(id string) []map[string]any {
	slaves := []map[string]any{}
	for _, aid := range m.agentOrder {
		a := m.agents[aid]
		if id != "" && a.id != id {
			continue
		}
		slaves = append(slaves, map[string]any{
			"id": a.id, "pid": a.pid, "hostname": a.info.Hostname, "port": a.info.GetPort(),
			"registered_time": a.registered.Unix(), "resources": mesosutil.ResourcesJSON(revocable(a.total, false)),
			"revocable_resources": mesosutil.ResourcesJSON(revocable(a.total, true)),
			"used_resources":      mesosutil.ResourcesJSON(a.used), "offered_resources": mesosutil.ResourcesJSON(a.offered),
			"reserved_resources": map[string]any{}, "unreserved_resources": mesosutil.ResourcesJSON(revocable(a.total, false)),
			"attributes": attributesJSON(a.info.Attributes), "active": a.link != nil, "version": Version,
		})
	}
	return slaves
}

// frameworksLocked is the registered and the completed frameworks as
// /master/state and /master/frameworks show them; only the one with id
// when id is not empty.
func (m *Master) frameworksLocked(id string) (frameworks, completed []map[string]any) {
	frameworks, completed = []map[string]any{}, []map[string]any{}
	ids := make([]string, 0, len(m.frameworks))
	for fid := range m.frameworks {
		ids = append(ids, fid)
	}
	sort.Strings(ids)
	for _, fid := range ids {
		if id == "" || fid == id {
			frameworks = append(frameworks, m.frameworkJSON(m.frameworks[fid], true))
		}
	}
	for _, fw := range m.completed {
		if id == "" || fw.id == id {
			completed = append(completed, m.frameworkJSON(fw, false))
		}
	}
	return frameworks, completed
}

// serveSlaves is Mesos' /master/slaves: the registered agents, and the
// agents recovered from the registry that have not come back (none: the
// master keeps no registry). ?slave_id= narrows it to one agent.
func (m *Master) serveSlaves(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	slaves := m.slavesLocked(r.URL.Query().Get("slave_id"))
	m.mu.Unlock()
	mesosutil.WriteJSON(w, map[string]any{"slaves": slaves, "recovered_slaves": []any{}})
}

// serveFrameworks is Mesos' /master/frameworks: the registered frameworks
// with their tasks and offers, and the completed ones.
// ?framework_id= narrows it to one framework.
func (m *Master) serveFrameworks(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	frameworks, completed := m.frameworksLocked(r.URL.Query().Get("framework_id"))
	m.mu.Unlock()
	mesosutil.WriteJSON(w, map[string]any{"frameworks": frameworks, "completed_frameworks": completed, "unregistered_frameworks": []any{}})
}

// taskLimit is how many tasks /master/tasks lists without ?limit=, as Mesos.
const taskLimit = 100

// serveTasks is Mesos' /master/tasks: the tasks of the registered and the
// completed frameworks, running and completed, ordered by the time of their
// first status update (?order=des, the default, newest first; or asc) and
// paged with ?offset= and ?limit=; ?framework_id= and ?task_id= narrow it.
// Unlike Mesos, which takes an unparsable number for its default, a bad
// parameter is refused with a 400 that names it.
func (m *Master) serveTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := taskLimit, 0
	for _, p := range []struct {
		name string
		v    *int
	}{{"limit", &limit}, {"offset", &offset}} {
		if s := q.Get(p.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				http.Error(w, fmt.Sprintf("%s=%q: want a non-negative integer", p.name, s), http.StatusBadRequest)
				return
			}
			*p.v = n
		}
	}
	asc := false
	switch o := q.Get("order"); o {
	case "asc":
		asc = true
	case "", "des", "desc":
	default:
		http.Error(w, fmt.Sprintf("order=%q: want asc or des", o), http.StatusBadRequest)
		return
	}
	fwID, taskID := q.Get("framework_id"), q.Get("task_id")
	m.mu.Lock()
	var ts []*task
	add := func(fw *framework) {
		if fwID != "" && fw.id != fwID {
			return
		}
		for _, t := range append(sortedTasks(fw.tasks), fw.completedTasks...) {
			if taskID == "" || t.info.TaskID.Value == taskID {
				ts = append(ts, t)
			}
		}
	}
	for _, fw := range m.frameworks {
		add(fw)
	}
	for _, fw := range m.completed {
		add(fw)
	}
	// By the first update's time; a task with none yet counts as the
	// newest. Ties (and order within a framework) by id, so pages are
	// stable.
	first := func(t *task) float64 {
		if len(t.statuses) == 0 {
			return math.Inf(1)
		}
		return t.statuses[0].GetTimestamp()
	}
	sort.SliceStable(ts, func(i, j int) bool {
		a, b := first(ts[i]), first(ts[j])
		if a != b {
			return (a < b) == asc
		}
		return ts[i].info.TaskID.Value < ts[j].info.TaskID.Value
	})
	out := []map[string]any{}
	for i := offset; i < len(ts) && i-offset < limit; i++ {
		out = append(out, m.taskJSON(ts[i]))
	}
	m.mu.Unlock()
	mesosutil.WriteJSON(w, map[string]any{"tasks": out})
}

// taskStates are the states /master/state-summary counts, as Mesos 1.1.
var taskStates = []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING,
	mesos.TASK_FINISHED, mesos.TASK_KILLED, mesos.TASK_FAILED, mesos.TASK_LOST, mesos.TASK_ERROR, mesos.TASK_UNREACHABLE}

// serveStateSummary is Mesos' /master/state-summary: the agents and the
// registered frameworks without their tasks, each with how many of its
// tasks (running and completed) are in each state, and which frameworks
// have tasks on an agent (framework_ids) and on which agents a framework
// has tasks (slave_ids).
func (m *Master) serveStateSummary(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	info := m.masterInfo()
	byAgent, byFw := map[string]map[mesos.TaskState]int{}, map[string]map[mesos.TaskState]int{}
	agentFws, fwAgents := map[string]map[string]bool{}, map[string]map[string]bool{}
	// tally counts a task's state under key (an agent or a framework) and
	// notes the other side (id).
	tally := func(counts map[string]map[mesos.TaskState]int, ids map[string]map[string]bool, key, id string, s mesos.TaskState) {
		if counts[key] == nil {
			counts[key], ids[key] = map[mesos.TaskState]int{}, map[string]bool{}
		}
		counts[key][s]++
		ids[key][id] = true
	}
	count := func(t *task) {
		tally(byAgent, agentFws, t.agent, t.fw, t.state)
		tally(byFw, fwAgents, t.fw, t.agent, t.state)
	}
	ids := make([]string, 0, len(m.frameworks))
	for id, fw := range m.frameworks {
		ids = append(ids, id)
		for _, t := range fw.tasks {
			count(t)
		}
		for _, t := range fw.completedTasks {
			count(t)
		}
	}
	sort.Strings(ids)
	withCounts := func(doc map[string]any, counts map[mesos.TaskState]int, idsKey string, ids map[string]bool) map[string]any {
		for _, s := range taskStates {
			doc[s.String()] = counts[s]
		}
		list := []string{}
		for id := range ids {
			list = append(list, id)
		}
		sort.Strings(list)
		doc[idsKey] = list
		return doc
	}
	slaves := m.slavesLocked("")
	for _, s := range slaves {
		id := s["id"].(string)
		withCounts(s, byAgent[id], "framework_ids", agentFws[id])
	}
	frameworks := []map[string]any{}
	for _, id := range ids {
		fw := m.frameworks[id]
		var used, offered mesos.Resources
		for _, t := range fw.tasks {
			used = used.Plus(t.res...)
		}
		for _, o := range m.offers {
			if o.fw == id {
				offered = offered.Plus(o.res...)
			}
		}
		frameworks = append(frameworks, withCounts(m.frameworkSummaryJSON(fw, true, used, offered), byFw[id], "slave_ids", fwAgents[id]))
	}
	m.mu.Unlock()
	mesosutil.WriteJSON(w, map[string]any{"hostname": info.GetHostname(), "slaves": slaves, "frameworks": frameworks})
}

func (m *Master) serveState(w http.ResponseWriter, r *http.Request) {
	mesosutil.WriteJSON(w, m.State())
}

func (m *Master) serveMetrics(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	counts := map[mesos.TaskState]int{}
	active := 0
	for _, fw := range m.frameworks {
		if fw.sub != nil {
			active++
		}
		for _, t := range fw.tasks {
			counts[t.state]++
		}
	}
	out := map[string]float64{
		"master/elected": 1, "master/uptime_secs": m.cfg.Now().Sub(m.start).Seconds(),
		"master/frameworks_active": float64(active), "master/frameworks_connected": float64(active),
		"master/slaves_active": float64(len(m.agents)), "master/slaves_connected": float64(len(m.agents)),
		"master/outstanding_offers": float64(len(m.offers)),
	}
	out["master/operator_event_stream_subscribers"] = float64(len(m.opSubs))
	for _, s := range []mesos.TaskState{mesos.TASK_STAGING, mesos.TASK_STARTING, mesos.TASK_RUNNING, mesos.TASK_KILLING} {
		out["master/"+strings.ToLower(s.String())] = float64(counts[s])
	}
	m.mu.Unlock()
	mesosutil.WriteJSON(w, out)
}

// revocable returns the resources that are revocable (want true) or not
// (want false). As in Mesos, an agent's resources are its non-revocable
// ones; its oversubscribed (revocable) ones are listed apart.
func revocable(rs []mesos.Resource, want bool) []mesos.Resource {
	var out []mesos.Resource
	for _, r := range rs {
		if (r.Revocable != nil) == want {
			out = append(out, r)
		}
	}
	return out
}
