package agent

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/limits"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	agentapi "github.com/mesos/mesos-go/api/v1/lib/agent"
)

// The v1 operator API (POST /api/v1, as Mesos' agent serves it since 1.0)
// answers the read-only calls below with mesos-go's agent.Response, in
// JSON or protobuf as the request's Content-Type and Accept say. LIST_FILES
// and READ_FILE take the paths of /files and go through the same code
// (browse, readFile: sandboxfs confinement) and the same per-client bound
// (Config.FilesLimiter). Every other call, all that change something
// (launching, killing or attaching to containers, the logging level,
// resource providers), is refused with 501 Not Implemented naming it.
var operatorCalls = []agentapi.Call_Type{
	agentapi.Call_GET_HEALTH, agentapi.Call_GET_FLAGS, agentapi.Call_GET_VERSION, agentapi.Call_GET_STATE,
	agentapi.Call_GET_CONTAINERS, agentapi.Call_GET_FRAMEWORKS, agentapi.Call_GET_EXECUTORS,
	agentapi.Call_GET_TASKS, agentapi.Call_LIST_FILES, agentapi.Call_READ_FILE,
}

// apiError is a v1 call's failure: the HTTP status and message it is
// answered with.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badCall(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (a *Agent) serveAPI(w http.ResponseWriter, r *http.Request) {
	var call agentapi.Call
	out, ok := mesosutil.ReadCall(w, r, limits.AgentAPICallBytes, &call)
	if !ok {
		return
	}
	// The sandbox-reading calls count against the client's /files bound.
	if t := call.GetType(); t == agentapi.Call_LIST_FILES || t == agentapi.Call_READ_FILE {
		release, status, msg := a.cfg.FilesLimiter.Acquire(r)
		if release == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, msg, status)
			return
		}
		defer release()
	}
	resp, err := a.operatorCall(&call)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = &apiError{http.StatusInternalServerError, err.Error()}
		}
		http.Error(w, ae.msg, ae.status)
		return
	}
	b, err := mesosutil.Encode(out, resp)
	if err != nil {
		http.Error(w, "Failed to encode the response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", out)
	w.Write(b)
}

// operatorCall answers one v1 call.
func (a *Agent) operatorCall(call *agentapi.Call) (*agentapi.Response, error) {
	t := call.GetType()
	resp := &agentapi.Response{Type: agentapi.Response_Type(agentapi.Response_Type_value[t.String()])}
	switch t {
	case agentapi.Call_UNKNOWN:
		return nil, badCall("Expecting 'type' to be present")
	case agentapi.Call_GET_HEALTH:
		// Healthy as /health is: registered with the master.
		a.mu.Lock()
		resp.GetHealth = &agentapi.Response_GetHealth{Healthy: a.registered}
		a.mu.Unlock()
	case agentapi.Call_GET_FLAGS:
		resp.GetFlags = &agentapi.Response_GetFlags{Flags: a.flagList()}
	case agentapi.Call_GET_VERSION:
		resp.GetVersion = &agentapi.Response_GetVersion{VersionInfo: mesosutil.VersionInfo(a.cfg.BuildVersion)}
	case agentapi.Call_GET_STATE:
		tasks, executors, frameworks := a.operatorState()
		resp.GetState = &agentapi.Response_GetState{GetTasks: tasks, GetExecutors: executors, GetFrameworks: frameworks}
	case agentapi.Call_GET_FRAMEWORKS:
		_, _, resp.GetFrameworks = a.operatorState()
	case agentapi.Call_GET_EXECUTORS:
		_, resp.GetExecutors, _ = a.operatorState()
	case agentapi.Call_GET_TASKS:
		resp.GetTasks, _, _ = a.operatorState()
	case agentapi.Call_GET_CONTAINERS:
		resp.GetContainers = &agentapi.Response_GetContainers{Containers: a.containers()}
	case agentapi.Call_LIST_FILES:
		if call.ListFiles == nil {
			return nil, badCall("Expecting 'list_files' to be present")
		}
		infos, err := a.listFiles(call.ListFiles.Path)
		if err != nil {
			return nil, err
		}
		resp.ListFiles = &agentapi.Response_ListFiles{FileInfos: infos}
	case agentapi.Call_READ_FILE:
		rf := call.ReadFile
		if rf == nil {
			return nil, badCall("Expecting 'read_file' to be present")
		}
		if rf.Offset > math.MaxInt64 {
			return nil, badCall("Invalid offset %d", rf.Offset)
		}
		length := int64(maxRead)
		if rf.Length != nil {
			length = int64(min(*rf.Length, maxRead))
		}
		size, data, err := a.readFile(rf.Path, int64(rf.Offset), length)
		if err != nil {
			return nil, filesAPIError(rf.Path, err)
		}
		resp.ReadFile = &agentapi.Response_ReadFile{Size_: uint64(size), Data: data}
	default:
		names := make([]string, len(operatorCalls))
		for i, c := range operatorCalls {
			names[i] = c.String()
		}
		return nil, &apiError{http.StatusNotImplemented, fmt.Sprintf(
			"%s is not supported by aurorabox's agent, which serves only the read-only calls %s", t, strings.Join(names, ", "))}
	}
	return resp, nil
}

// filesAPIError is a failed LIST_FILES or READ_FILE as Mesos answers it: a
// path outside every sandbox is not found (404, as Mesos answers a path it
// does not serve); the rest as /files answers them.
func filesAPIError(path string, err error) *apiError {
	if errors.Is(err, sandboxfs.ErrOutside) {
		return &apiError{http.StatusNotFound, fmt.Sprintf("%q is not in any sandbox of this agent", path)}
	}
	code, msg := filesStatus(err)
	return &apiError{code, msg}
}

// listFiles is LIST_FILES: browse's entries as Mesos' FileInfo.
func (a *Agent) listFiles(path string) ([]mesos.FileInfo, error) {
	entries, err := a.browse(path)
	if err != nil {
		return nil, filesAPIError(path, err)
	}
	out := make([]mesos.FileInfo, 0, len(entries))
	for _, e := range entries {
		v := entryFor(e.path, e.info)
		size := uint64(max(0, v.Size))
		nlink := int32(min(v.Nlink, math.MaxInt32))
		mode := uint32(e.info.Mode().Perm())
		if st, ok := e.info.Sys().(*syscall.Stat_t); ok {
			mode = st.Mode
		}
		fi := mesos.FileInfo{
			Path: v.Path, Nlink: &nlink, Size_: &size, Mode: &mode, UID: &v.UID, GID: &v.GID,
			Mtime: &mesos.TimeInfo{Nanoseconds: e.info.ModTime().UnixNano()},
		}
		out = append(out, fi)
	}
	return out, nil
}

// pendingUpdates is, per framework and task, the state of the task's
// latest status update that its framework has not acknowledged yet.
func (m *updateManager) pendingUpdates() map[updateKey]mesos.TaskState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[updateKey]mesos.TaskState{}
	for k, s := range m.streams {
		if n := len(s.pending); n > 0 {
			out[k] = s.pending[n-1].GetState()
		}
	}
	return out
}

// operatorState is GET_TASKS, GET_EXECUTORS and GET_FRAMEWORKS, which
// GET_STATE answers together, from one view of the agent. Tasks are
// sorted by id within each executor, executors and frameworks by id.
//
// As in Mesos, queued_tasks are those not yet handed to their executor,
// launched_tasks those it runs, terminated_tasks those terminal whose
// terminal update the framework has not acknowledged yet, and
// completed_tasks the rest (with whatever a terminated executor left
// unfinished). pending_tasks (Mesos' tasks waiting for an executor being
// authorized or fetched) is always empty: the agent starts an executor at
// once.
func (a *Agent) operatorState() (*agentapi.Response_GetTasks, *agentapi.Response_GetExecutors, *agentapi.Response_GetFrameworks) {
	unacked := a.updates.pendingUpdates() // before a.mu: the update manager's lock comes after it
	a.mu.Lock()
	defer a.mu.Unlock()
	tasks := &agentapi.Response_GetTasks{}
	executors := &agentapi.Response_GetExecutors{}
	frameworks := &agentapi.Response_GetFrameworks{}
	agentID := mesos.AgentID{Value: a.id}
	task := func(fw string, ex *executorState, info mesos.TaskInfo, state mesos.TaskState) mesos.Task {
		exID := ex.info.ExecutorID // a copy: the answer is encoded after a.mu is released
		t := mesos.Task{
			Name: info.Name, TaskID: info.TaskID, FrameworkID: mesos.FrameworkID{Value: fw},
			ExecutorID: &exID, AgentID: agentID, State: state.Enum(), Resources: info.Resources,
			Labels: info.Labels, Discovery: info.Discovery, Container: info.Container,
			HealthCheck: info.HealthCheck, KillPolicy: info.KillPolicy,
		}
		if u := info.GetCommand().GetUser(); u != "" {
			t.User = &u
		}
		if s, ok := unacked[updateKey{fw, info.TaskID.Value}]; ok {
			t.StatusUpdateState = s.Enum()
		}
		return t
	}
	sortTasks := func(ts []mesos.Task) {
		sort.SliceStable(ts, func(i, j int) bool { return ts[i].TaskID.Value < ts[j].TaskID.Value })
	}
	executorInfo := func(fw string, ex *executorState) agentapi.Response_GetExecutors_Executor {
		info := ex.info
		if info.FrameworkID == nil {
			info.FrameworkID = &mesos.FrameworkID{Value: fw}
		}
		return agentapi.Response_GetExecutors_Executor{ExecutorInfo: info}
	}
	ids := make([]string, 0, len(a.frameworks))
	for id := range a.frameworks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, fw := range ids {
		fs := a.frameworks[fw]
		info := fs.info
		if info.ID == nil {
			info.ID = &mesos.FrameworkID{Value: fw}
		}
		frameworks.Frameworks = append(frameworks.Frameworks, agentapi.Response_GetFrameworks_Framework{FrameworkInfo: info})
		live := make([]*executorState, 0, len(fs.executors))
		for _, ex := range fs.executors {
			live = append(live, ex)
		}
		sort.Slice(live, func(i, j int) bool { return live[i].info.ExecutorID.Value < live[j].info.ExecutorID.Value })
		// A terminated executor's tasks are all done, but for those
		// whose terminal update is unacknowledged.
		add := func(ex *executorState, running bool) {
			var queued, launched, terminated, completed []mesos.Task
			for _, t := range ex.queued {
				queued = append(queued, task(fw, ex, t, mesos.TASK_STAGING))
			}
			for _, t := range ex.tasks {
				launched = append(launched, task(fw, ex, t.info, t.state))
			}
			for _, t := range ex.completed {
				if _, ok := unacked[updateKey{fw, t.info.TaskID.Value}]; ok {
					terminated = append(terminated, task(fw, ex, t.info, t.state))
				} else {
					completed = append(completed, task(fw, ex, t.info, t.state))
				}
			}
			if !running {
				completed = slices.Concat(completed, queued, launched)
				queued, launched = nil, nil
			}
			for _, ts := range [][]mesos.Task{queued, launched, terminated, completed} {
				sortTasks(ts)
			}
			tasks.QueuedTasks = append(tasks.QueuedTasks, queued...)
			tasks.LaunchedTasks = append(tasks.LaunchedTasks, launched...)
			tasks.TerminatedTasks = append(tasks.TerminatedTasks, terminated...)
			tasks.CompletedTasks = append(tasks.CompletedTasks, completed...)
		}
		for _, ex := range live {
			executors.Executors = append(executors.Executors, executorInfo(fw, ex))
			add(ex, true)
		}
		for _, ex := range fs.completed {
			executors.CompletedExecutors = append(executors.CompletedExecutors, executorInfo(fw, ex))
			add(ex, false)
		}
	}
	return tasks, executors, frameworks
}

// containers is GET_CONTAINERS: one entry per live executor's container,
// with its framework and executor, its status (the executor's pid where the
// agent started it) and its resource statistics (those of
// /monitor/statistics). Sorted by container id.
func (a *Agent) containers() []agentapi.Response_GetContainers_Container {
	live := a.liveContainers()
	out := make([]agentapi.Response_GetContainers_Container, 0, len(live))
	for _, c := range live {
		cid := mesos.ContainerID{Value: c.containerID}
		status := &mesos.ContainerStatus{ContainerID: &cid}
		if c.pid > 0 {
			pid := uint32(c.pid)
			status.ExecutorPID = &pid
		}
		stats := a.resourceStatistics(c.container, c.limits)
		out = append(out, agentapi.Response_GetContainers_Container{
			FrameworkID: &mesos.FrameworkID{Value: c.fw}, ExecutorID: &c.info.ExecutorID, ExecutorName: c.info.Name,
			ContainerID: cid, ContainerStatus: status, ResourceStatistics: &stats,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID.Value < out[j].ContainerID.Value })
	return out
}
