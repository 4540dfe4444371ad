package master

import (
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/gogo/protobuf/proto"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/allocator"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	mastercall "github.com/mesos/mesos-go/api/v1/lib/master"
)

// The v1 operator API (POST /api/v1), as Mesos' master serves it: one Call
// per request, in JSON or protobuf, answered with a Response; SUBSCRIBE
// answers with a RecordIO stream of Events (see operator_events.go). Only
// the calls that read the master's state are served: the ones that change
// it (TEARDOWN, RESERVE_RESOURCES, UPDATE_MAINTENANCE_SCHEDULE, …) would
// need the operator authentication aurorabox does not have, and are
// refused with 501 and the call's name.

// maxOperatorCallBytes bounds an operator call's body. The calls served
// carry at most a few ids; the ones with large bodies (schedules,
// resources) change the cluster and are refused anyway.
const maxOperatorCallBytes = 64 << 10

func (m *Master) registerOperatorV1(mux *http.ServeMux) {
	mux.HandleFunc("/api/v1", m.serveOperatorV1)
	for _, p := range []string{"/master/flags", "/flags"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			mesosutil.WriteJSON(w, map[string]any{"flags": m.flagsJSON()})
		})
	}
}

func (m *Master) serveOperatorV1(w http.ResponseWriter, r *http.Request) {
	var call mastercall.Call
	out, ok := mesosutil.ReadCall(w, r, maxOperatorCallBytes, &call)
	if !ok {
		return
	}
	if call.GetType() == mastercall.Call_SUBSCRIBE {
		m.serveOperatorSubscribe(w, r, out)
		return
	}
	resp, status, msg := m.operatorCall(&call)
	if resp == nil {
		http.Error(w, msg, status)
		return
	}
	emptyNotNull(reflect.ValueOf(resp))
	b, err := encode(out, resp)
	if err != nil {
		http.Error(w, "Failed to encode the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", out)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// operatorCall answers a non-streaming call; a nil Response comes with the
// HTTP status and message of the refusal.
func (m *Master) operatorCall(call *mastercall.Call) (*mastercall.Response, int, string) {
	t := call.GetType()
	resp := &mastercall.Response{}
	switch t {
	case mastercall.Call_UNKNOWN:
		return nil, http.StatusBadRequest, "Expecting 'type' to be present"
	case mastercall.Call_GET_HEALTH:
		resp.Type = mastercall.Response_GET_HEALTH
		resp.GetHealth = &mastercall.Response_GetHealth{Healthy: true}
	case mastercall.Call_GET_FLAGS:
		resp.Type = mastercall.Response_GET_FLAGS
		resp.GetFlags = &mastercall.Response_GetFlags{Flags: m.flags()}
	case mastercall.Call_GET_VERSION:
		resp.Type = mastercall.Response_GET_VERSION
		resp.GetVersion = &mastercall.Response_GetVersion{VersionInfo: mesosutil.VersionInfo(m.cfg.BuildVersion)}
	case mastercall.Call_GET_MASTER:
		start := float64(m.start.UnixNano()) / 1e9
		resp.Type = mastercall.Response_GET_MASTER
		resp.GetMaster = &mastercall.Response_GetMaster{MasterInfo: m.masterInfo(), StartTime: &start, ElectedTime: &start}
	case mastercall.Call_GET_STATE, mastercall.Call_GET_FRAMEWORKS, mastercall.Call_GET_AGENTS, mastercall.Call_GET_TASKS,
		mastercall.Call_GET_EXECUTORS, mastercall.Call_GET_MAINTENANCE_STATUS, mastercall.Call_GET_MAINTENANCE_SCHEDULE:
		// Built under the lock and copied before it is released: the
		// values share slices and pointers with the master's state.
		m.mu.Lock()
		switch t {
		case mastercall.Call_GET_STATE:
			resp.Type = mastercall.Response_GET_STATE
			resp.GetState = m.getStateLocked()
		case mastercall.Call_GET_FRAMEWORKS:
			resp.Type = mastercall.Response_GET_FRAMEWORKS
			resp.GetFrameworks = m.getFrameworksLocked()
		case mastercall.Call_GET_AGENTS:
			resp.Type = mastercall.Response_GET_AGENTS
			resp.GetAgents = m.getAgentsLocked()
		case mastercall.Call_GET_TASKS:
			resp.Type = mastercall.Response_GET_TASKS
			resp.GetTasks = m.getTasksLocked()
		case mastercall.Call_GET_EXECUTORS:
			resp.Type = mastercall.Response_GET_EXECUTORS
			resp.GetExecutors = m.getExecutorsLocked()
		case mastercall.Call_GET_MAINTENANCE_STATUS:
			resp.Type = mastercall.Response_GET_MAINTENANCE_STATUS
			resp.GetMaintenanceStatus = &mastercall.Response_GetMaintenanceStatus{Status: m.clusterStatusLocked()}
		case mastercall.Call_GET_MAINTENANCE_SCHEDULE:
			resp.Type = mastercall.Response_GET_MAINTENANCE_SCHEDULE
			resp.GetMaintenanceSchedule = &mastercall.Response_GetMaintenanceSchedule{Schedule: m.schedule}
		}
		resp = proto.Clone(resp).(*mastercall.Response)
		m.mu.Unlock()
	default:
		if _, known := mastercall.Call_Type_name[int32(t)]; !known {
			return nil, http.StatusBadRequest, fmt.Sprintf("Unknown call type %d", t)
		}
		return nil, http.StatusNotImplemented, fmt.Sprintf("Call %s is not supported by aurorabox's master: "+
			"its v1 operator API serves only the calls that read state (GET_* and SUBSCRIBE)", t)
	}
	return resp, 0, ""
}

// emptyNotNull makes the nil lists (of messages, strings or numbers; not
// bytes) and maps in the message v points to empty, so that its JSON shows [] where
// there are no elements, not null: Mesos omits empty lists, and clients
// (jq among them) iterate over [] as over a missing list, but fail on
// null. The protobuf encoding is the same either way.
func emptyNotNull(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			emptyNotNull(v.Elem())
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Field(i); f.CanSet() {
				emptyNotNull(f)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		for i := 0; i < v.Len(); i++ {
			emptyNotNull(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
	}
}

// flags is the master's configuration as Mesos' flags, sorted by name.
// Settings that Mesos has as flags carry Mesos' names; the others
// (aurorabox's own) are named after their Config field. Secrets are never
// shown, only whether one is set.
func (m *Master) flags() []mesos.Flag {
	info := m.masterInfo()
	cfg := m.cfg
	vals := map[string]string{
		// Mesos' flags.
		"hostname":                    info.GetHostname(),
		"ip":                          info.GetAddress().GetIP(),
		"port":                        strconv.Itoa(int(info.GetPort())),
		"agent_ping_timeout":          mesosDuration(cfg.AgentPingTimeout),
		"max_agent_ping_timeouts":     strconv.Itoa(cfg.MaxAgentPingTimeouts),
		"authenticate_agents":         strconv.FormatBool(len(cfg.AgentSecret) > 0),
		"authenticate_frameworks":     "false",
		"authenticate_http_readonly":  "false",
		"authenticate_http_readwrite": "false",
		// aurorabox's settings that Mesos has no flag for.
		"heartbeat_interval":    mesosDuration(cfg.HeartbeatInterval),
		"decline_delay":         mesosDuration(cfg.DeclineDelay),
		"agent_removal_timeout": mesosDuration(cfg.AgentRemovalTimeout),
		"insecure_agents":       strconv.FormatBool(cfg.InsecureAgents),
	}
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]mesos.Flag, 0, len(names))
	for _, k := range names {
		v := vals[k]
		out = append(out, mesos.Flag{Name: k, Value: &v})
	}
	return out
}

// flagsJSON is flags as the v0 endpoints show them: name → value.
func (m *Master) flagsJSON() map[string]string {
	out := map[string]string{}
	for _, f := range m.flags() {
		out[f.Name] = f.GetValue()
	}
	return out
}

// mesosDuration writes d as Mesos' flags show durations: in the largest
// unit of which it is at least one ("15secs", "100ms", "1.5mins").
func mesosDuration(d time.Duration) string {
	units := []struct {
		name string
		size time.Duration
	}{
		{"weeks", 7 * 24 * time.Hour}, {"days", 24 * time.Hour}, {"hrs", time.Hour}, {"mins", time.Minute},
		{"secs", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond},
	}
	for _, u := range units {
		if d >= u.size {
			return strconv.FormatFloat(float64(d)/float64(u.size), 'f', -1, 64) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

func timeInfo(t time.Time) *mesos.TimeInfo {
	if t.IsZero() {
		return nil
	}
	return &mesos.TimeInfo{Nanoseconds: t.UnixNano()}
}

// getStateLocked is GET_STATE: what /master/state shows, as protobuf.
func (m *Master) getStateLocked() *mastercall.Response_GetState {
	return &mastercall.Response_GetState{
		GetTasks: m.getTasksLocked(), GetExecutors: m.getExecutorsLocked(),
		GetFrameworks: m.getFrameworksLocked(), GetAgents: m.getAgentsLocked(),
	}
}

func (m *Master) agentProto(a *agent) mastercall.Response_GetAgents_Agent {
	pid := a.pid
	return mastercall.Response_GetAgents_Agent{
		AgentInfo: a.info, Active: a.link != nil, Version: Version, PID: &pid,
		RegisteredTime: timeInfo(a.registered), TotalResources: a.total,
		AllocatedResources: a.used, OfferedResources: a.offered,
	}
}

func (m *Master) getAgentsLocked() *mastercall.Response_GetAgents {
	out := &mastercall.Response_GetAgents{Agents: []mastercall.Response_GetAgents_Agent{}}
	for _, aid := range m.agentOrder {
		out.Agents = append(out.Agents, m.agentProto(m.agents[aid]))
	}
	return out
}

// frameworkProto is one framework as GET_FRAMEWORKS and the framework
// events show it; active is false for a completed framework.
func (m *Master) frameworkProto(fw *framework, active bool) mastercall.Response_GetFrameworks_Framework {
	out := mastercall.Response_GetFrameworks_Framework{
		FrameworkInfo: fw.info, Active: active && fw.sub != nil && !fw.suppressed, Connected: fw.sub != nil,
		Recovered: fw.recovered, RegisteredTime: timeInfo(fw.registered), ReregisteredTime: timeInfo(fw.reregistered),
		UnregisteredTime: timeInfo(fw.unregistered),
	}
	for _, t := range sortedTasks(fw.tasks) {
		out.AllocatedResources = append(out.AllocatedResources, t.res...)
	}
	ids := make([]string, 0, len(m.offers))
	for id, o := range m.offers {
		if o.fw == fw.id {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := m.offers[id]
		out.Offers = append(out.Offers, *m.offerProto(o))
		out.OfferedResources = append(out.OfferedResources, o.res...)
	}
	if m.inverse != nil {
		for _, inv := range m.inverse.offers {
			if inv.fw == fw.id {
				out.InverseOffers = append(out.InverseOffers, mesos.InverseOffer{
					OfferID: mesos.OfferID{Value: inv.id}, FrameworkID: mesos.FrameworkID{Value: fw.id},
					AgentID: &mesos.AgentID{Value: inv.agent}, Unavailability: inv.unavail,
				})
			}
		}
		sort.Slice(out.InverseOffers, func(i, j int) bool { return out.InverseOffers[i].OfferID.Value < out.InverseOffers[j].OfferID.Value })
	}
	return out
}

func (m *Master) getFrameworksLocked() *mastercall.Response_GetFrameworks {
	out := &mastercall.Response_GetFrameworks{Frameworks: []mastercall.Response_GetFrameworks_Framework{}}
	for _, fw := range m.sortedFrameworksLocked() {
		out.Frameworks = append(out.Frameworks, m.frameworkProto(fw, true))
	}
	for _, fw := range m.completed {
		out.CompletedFrameworks = append(out.CompletedFrameworks, m.frameworkProto(fw, false))
	}
	return out
}

func (m *Master) sortedFrameworksLocked() []*framework {
	out := make([]*framework, 0, len(m.frameworks))
	for _, fw := range m.frameworks {
		out = append(out, fw)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// taskProto is a task as Mesos' Task message carries it.
func (m *Master) taskProto(t *task) mesos.Task {
	info := t.info
	state := t.state
	out := mesos.Task{
		Name: info.Name, TaskID: info.TaskID, FrameworkID: mesos.FrameworkID{Value: t.fw},
		AgentID: mesos.AgentID{Value: t.agent}, State: &state, Resources: info.Resources,
		Labels: info.Labels, Discovery: info.Discovery, Container: info.Container,
		HealthCheck: info.HealthCheck, KillPolicy: info.KillPolicy,
		Statuses: make([]mesos.TaskStatus, len(t.statuses)),
	}
	for i, st := range t.statuses {
		st.Data = nil // as Mesos, the master does not keep (or show) status data
		out.Statuses[i] = st
	}
	if n := len(t.statuses); n > 0 {
		last := t.statuses[n-1].GetState()
		out.StatusUpdateState = &last
		out.StatusUpdateUUID = t.statuses[n-1].UUID
	}
	if info.Executor != nil {
		id := info.Executor.ExecutorID
		out.ExecutorID = &id
	}
	// As Mesos: the user the task or its executor asks to run as, if any.
	if c := info.GetCommand(); c != nil && c.User != nil {
		out.User = proto.String(c.GetUser())
	} else if c := info.GetExecutor().GetCommand(); c != nil && c.User != nil {
		out.User = proto.String(c.GetUser())
	}
	return out
}

func (m *Master) getTasksLocked() *mastercall.Response_GetTasks {
	out := &mastercall.Response_GetTasks{Tasks: []mesos.Task{}}
	all := append(m.sortedFrameworksLocked(), m.completed...)
	for _, fw := range all {
		for _, t := range sortedTasks(fw.tasks) {
			switch {
			case t.state == mesos.TASK_UNREACHABLE:
				out.UnreachableTasks = append(out.UnreachableTasks, m.taskProto(t))
			case mesosutil.IsTerminal(t.state): // lost with its agent
				out.CompletedTasks = append(out.CompletedTasks, m.taskProto(t))
			default:
				out.Tasks = append(out.Tasks, m.taskProto(t))
			}
		}
		for _, t := range fw.completedTasks {
			out.CompletedTasks = append(out.CompletedTasks, m.taskProto(t))
		}
	}
	return out
}

// getExecutorsLocked lists the executors of the live tasks (the master
// knows an executor from the tasks launched with it), one per framework,
// agent and executor id.
func (m *Master) getExecutorsLocked() *mastercall.Response_GetExecutors {
	out := &mastercall.Response_GetExecutors{Executors: []mastercall.Response_GetExecutors_Executor{}}
	seen := map[string]bool{}
	for _, fw := range m.sortedFrameworksLocked() {
		for _, t := range sortedTasks(fw.tasks) {
			ex := t.info.Executor
			if ex == nil || mesosutil.IsTerminal(t.state) {
				continue
			}
			key := fw.id + "\x00" + t.agent + "\x00" + ex.ExecutorID.Value
			if seen[key] {
				continue
			}
			seen[key] = true
			info := *ex
			info.FrameworkID = &mesos.FrameworkID{Value: fw.id}
			out.Executors = append(out.Executors, mastercall.Response_GetExecutors_Executor{
				ExecutorInfo: info, AgentID: mesos.AgentID{Value: t.agent},
			})
		}
	}
	return out
}

// clusterStatusLocked is the maintenance status (/maintenance/status) as
// Mesos' ClusterStatus.
func (m *Master) clusterStatusLocked() maintenance.ClusterStatus {
	var out maintenance.ClusterStatus
	keys := make([]string, 0, len(m.machines))
	for k := range m.machines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		host, ip, _ := strings.Cut(k, "|")
		id := mesos.MachineID{}
		if host != "" {
			id.Hostname = &host
		}
		if ip != "" {
			id.IP = &ip
		}
		if m.machines[k] == machineDown {
			out.DownMachines = append(out.DownMachines, id)
			continue
		}
		out.DrainingMachines = append(out.DrainingMachines,
			maintenance.ClusterStatus_DrainingMachine{ID: id, Statuses: m.inverseOfferStatusesLocked(k)})
	}
	return out
}

// inverseOfferStatusesLocked lists a draining machine's frameworks'
// answers to their inverse offers, by framework id: UNKNOWN while an
// inverse offer is outstanding, then ACCEPT or DECLINE.
func (m *Master) inverseOfferStatusesLocked(machine string) []allocator.InverseOfferStatus {
	book := m.inverseLocked()
	status := map[string]allocator.InverseOfferStatus_Status{}
	at := map[string]time.Time{}
	for _, inv := range book.offers {
		if inv.machine == machine {
			status[inv.fw] = allocator.InverseOfferStatus_UNKNOWN
		}
	}
	for fw, ans := range book.answers[machine] {
		if _, pending := status[fw]; pending {
			continue
		}
		status[fw] = allocator.InverseOfferStatus_DECLINE
		if ans.accepted {
			status[fw] = allocator.InverseOfferStatus_ACCEPT
		}
		at[fw] = ans.at
	}
	fws := make([]string, 0, len(status))
	for fw := range status {
		fws = append(fws, fw)
	}
	sort.Strings(fws)
	out := []allocator.InverseOfferStatus{}
	for _, fw := range fws {
		ts := at[fw]
		if ts.IsZero() {
			ts = m.cfg.Now()
		}
		s := status[fw]
		out = append(out, allocator.InverseOfferStatus{
			Status: &s, FrameworkID: mesos.FrameworkID{Value: fw}, Timestamp: mesos.TimeInfo{Nanoseconds: ts.UnixNano()},
		})
	}
	return out
}

// isRecordIO reports whether the client asked for the stream framing to be
// named in Content-Type (Accept: application/recordio, Mesos ≥ 1.2), with
// the records' own type in Message-Accept.
func isRecordIO(r *http.Request) bool {
	a, _, err := mime.ParseMediaType(r.Header.Get("Accept"))
	return err == nil && a == "application/recordio"
}
