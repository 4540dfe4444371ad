package agent

import (
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Handler serves the agent's executor and operator APIs.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v1/executor", a.serveExecutor)
	mux.HandleFunc("/api/v1", a.serveAPI)
	mux.HandleFunc("/slave(1)/api/v1", a.serveAPI)
	mux.HandleFunc("/flags", a.serveFlags)
	mux.HandleFunc("/slave(1)/flags", a.serveFlags)
	for _, p := range []string{"/state", "/state.json", "/slave(1)/state", "/slave(1)/state.json"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { mesosutil.WriteJSON(w, a.State()) })
	}
	// Healthy once registered with the master: that is when it can run tasks.
	health := func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		ok := a.registered
		a.mu.Unlock()
		if !ok {
			http.Error(w, "not registered with the master", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
	mux.HandleFunc("/health", health)
	mux.HandleFunc("/slave(1)/health", health)
	// The sandbox-reading routes, bounded per client (sandboxfs.Limiter).
	files := func(h http.HandlerFunc) http.Handler { return a.cfg.FilesLimiter.Wrap(h) }
	mux.Handle("/files/browse", files(a.serveBrowse))
	mux.Handle("/files/browse.json", files(a.serveBrowse))
	mux.Handle("/files/read", files(a.serveRead))
	mux.Handle("/files/read.json", files(a.serveRead))
	mux.Handle("/files/download", files(a.serveDownload))
	mux.Handle("/files/download.json", files(a.serveDownload))
	mux.HandleFunc("/files/sandbox", a.serveSandbox)
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) {
		mesosutil.WriteJSON(w, mesosutil.VersionJSON(a.cfg.BuildVersion))
	})
	for _, p := range []string{"/monitor/statistics", "/monitor/statistics.json"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { mesosutil.WriteJSON(w, a.statistics()) })
	}
	return mux
}

// serveSandbox redirects ?framework_id=&executor_id= to the browse view of
// that executor's latest run, so that the master's page can link to a
// task's sandbox without knowing this agent's work dir.
func (a *Agent) serveSandbox(w http.ResponseWriter, r *http.Request) {
	fw, ex := r.URL.Query().Get("framework_id"), r.URL.Query().Get("executor_id")
	a.mu.Lock()
	id := a.id
	a.mu.Unlock()
	if fw == "" || ex == "" || strings.ContainsAny(fw+ex, "/\x00") || fw == ".." || ex == ".." || fw == "." || ex == "." {
		http.Error(w, "framework_id and executor_id are required", http.StatusBadRequest)
		return
	}
	dir := filepath.Join(a.cfg.WorkDir, "slaves", id, "frameworks", fw, "executors", ex, "runs", "latest")
	http.Redirect(w, r, "/files/browse?path="+url.QueryEscape(dir), http.StatusFound)
}

func taskJSON(t *taskState, fw, agentID string) map[string]any {
	ex := ""
	if t.info.Executor != nil {
		ex = t.info.Executor.ExecutorID.Value
	}
	return map[string]any{
		"id": t.info.TaskID.Value, "name": t.info.Name, "framework_id": fw, "executor_id": ex,
		"slave_id": agentID, "state": t.state.String(), "resources": mesosutil.ResourcesJSON(t.info.Resources),
	}
}

func (a *Agent) executorJSON(ex *executorState) map[string]any {
	tasks, queued, completed := []map[string]any{}, []map[string]any{}, []map[string]any{}
	var res []mesos.Resource
	res = append(res, ex.info.Resources...)
	for _, t := range ex.tasks {
		tasks = append(tasks, taskJSON(t, ex.fw, a.id))
		res = append(res, t.info.Resources...)
	}
	for _, t := range ex.queued {
		queued = append(queued, taskJSON(&taskState{info: t, state: mesos.TASK_STAGING}, ex.fw, a.id))
	}
	for _, t := range ex.completed {
		completed = append(completed, taskJSON(t, ex.fw, a.id))
	}
	sortByID(tasks)
	sortByID(queued)
	return map[string]any{
		"id": ex.info.ExecutorID.Value, "name": ex.info.GetName(), "source": ex.info.GetSource(),
		"container": ex.containerID, "directory": ex.directory, "framework_id": ex.fw,
		"resources": mesosutil.ResourcesJSON(res), "tasks": tasks, "queued_tasks": queued, "completed_tasks": completed,
		"type": map[bool]string{true: "COMMAND", false: "CUSTOM"}[ex.builtin],
	}
}

func sortByID(ts []map[string]any) {
	sort.Slice(ts, func(i, j int) bool { return ts[i]["id"].(string) < ts[j]["id"].(string) })
}

// State is the agent's /state document, with Mesos' key names.
func (a *Agent) State() map[string]any {
	a.mu.Lock()
	defer a.mu.Unlock()
	frameworks := []map[string]any{}
	ids := make([]string, 0, len(a.frameworks))
	for id := range a.frameworks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fs := a.frameworks[id]
		exs, done := []map[string]any{}, []map[string]any{}
		for _, ex := range fs.executors {
			exs = append(exs, a.executorJSON(ex))
		}
		for _, ex := range fs.completed {
			done = append(done, a.executorJSON(ex))
		}
		sortByID(exs)
		frameworks = append(frameworks, map[string]any{
			"id": id, "name": fs.info.Name, "user": fs.info.User, "role": fs.info.GetRole(),
			"hostname": fs.info.GetHostname(), "checkpoint": fs.info.GetCheckpoint(),
			"executors": exs, "completed_executors": done,
		})
	}
	attrs := map[string]any{}
	for _, at := range a.info.Attributes {
		if at.GetType() == mesos.SCALAR {
			attrs[at.Name] = at.GetScalar().GetValue()
		} else {
			attrs[at.Name] = at.GetText().GetValue()
		}
	}
	masterHost := strings.TrimPrefix(strings.TrimPrefix(a.cfg.MasterURL, "http://"), "https://")
	out := map[string]any{
		"id": a.id, "pid": a.pid(), "hostname": a.info.Hostname,
		"start_time": float64(a.start.UnixNano()) / 1e9, "resources": mesosutil.ResourcesJSON(a.info.Resources),
		"attributes": attrs, "master_hostname": masterHost, "registered": a.registered,
		"flags": a.flagsLocked(),
		// Not in Mesos: which cgroup version, or "none" and why.
		"isolation": string(a.iso.Mode()), "isolation_reason": a.iso.Reason(),
		"frameworks": frameworks, "completed_frameworks": []any{},
	}
	// version (the Mesos API release) and the build fields, as /version.
	for k, v := range mesosutil.VersionJSON(a.cfg.BuildVersion) {
		out[k] = v
	}
	return out
}
