package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	"github.com/aurorabox/aurorabox/scheduler/ui"
)

// maxRequestBytes bounds an API request body.
const maxRequestBytes = 16 << 20

// Handler serves the API and the operator endpoints.
func (s *Scheduler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apibeta/", s.serveAPI)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK\n") })
	mux.HandleFunc("/leaderhealth", func(w http.ResponseWriter, r *http.Request) {
		// The only scheduler is the leader once registered.
		if !s.Registered() {
			http.Error(w, "not registered with Mesos", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "OK\n")
	})
	mux.HandleFunc("/vars", func(w http.ResponseWriter, r *http.Request) {
		vars := s.vars()
		names := make([]string, 0, len(vars))
		for n := range vars {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "%s %v\n", n, vars[n])
		}
	})
	mux.HandleFunc("/vars.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.vars())
	})
	mux.HandleFunc("/pendingtasks", s.servePending)
	// The UI's own handler answers wrong methods, so no method patterns.
	h := ui.Handler(s, ui.Config{ObserverURL: s.observerURL, Now: s.cfg.Now})
	for _, p := range []string{"/scheduler", "/scheduler/", "/updates"} {
		mux.Handle(p, h)
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/scheduler", http.StatusFound) })
	return mux
}

// vars are the scheduler's metrics, under Aurora's names where it has them.
func (s *Scheduler) vars() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := 0
	if s.registered {
		reg = 1
	}
	v := map[string]any{"framework_registered": reg, "jobs": len(s.jobs), "outstanding_offers": len(s.offers)}
	for _, l := range []string{"IDLE", "PREPARING_STORAGE", "STORAGE_PREPARED", "LEADER_AWAITING_REGISTRATION", "ACTIVE", "DEAD"} {
		v["scheduler_lifecycle_"+l] = 0
	}
	if s.registered {
		v["scheduler_lifecycle_ACTIVE"] = 1
	} else {
		v["scheduler_lifecycle_LEADER_AWAITING_REGISTRATION"] = 1
	}
	counts := map[string]int{}
	for _, t := range s.tasks {
		counts[t.Status]++
	}
	for _, st := range state.Statuses() {
		v["task_store_"+st.String()] = counts[st.String()]
	}
	return v
}

// servePending is /pendingtasks: the PENDING tasks and why they wait.
func (s *Scheduler) servePending(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	type group struct {
		Name    string   `json:"name"`
		TaskIDs []string `json:"taskIds"`
		Reason  string   `json:"reason"`
	}
	var out []group
	for _, t := range s.tasks {
		if t.Status != state.Pending.String() {
			continue
		}
		reason := "No offers"
		if vs := s.vetoes[t.AssignedTask.TaskID]; len(vs) > 0 {
			var rs []string
			for _, v := range vs {
				rs = append(rs, v.Reason)
			}
			reason = strings.Join(rs, ", ")
		}
		out = append(out, group{Name: t.AssignedTask.Task.Job.String(), TaskIDs: []string{t.AssignedTask.TaskID}, Reason: reason})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].TaskIDs[0] < out[j].TaskIDs[0] })
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// serveAPI is POST /api/<method> with a JSON object of the method's named
// parameters (as Aurora's /apibeta), answering an Aurora Response.
func (s *Scheduler) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "POST a JSON object of the method's parameters to /api/<method>", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var resp api.Response
	if len(body) > maxRequestBytes {
		resp = s.fail(api.InvalidRequest, "request larger than %d bytes", maxRequestBytes)
	} else {
		resp = s.call(r.Context(), method, body)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Scheduler) ok(res *api.Result, msgs ...string) api.Response {
	resp := api.Response{ResponseCode: api.OK, ServerInfo: api.ServerInfo{ClusterName: s.cfg.Cluster}, Result: res}
	for _, m := range msgs {
		resp.Details = append(resp.Details, api.ResponseDetail{Message: m})
	}
	return resp
}

func (s *Scheduler) fail(code api.ResponseCode, format string, args ...any) api.Response {
	return api.Response{ResponseCode: code, ServerInfo: api.ServerInfo{ClusterName: s.cfg.Cluster},
		Details: []api.ResponseDetail{{Message: fmt.Sprintf(format, args...)}}}
}

func (s *Scheduler) errResponse(err error) api.Response {
	if IsInvalid(err) {
		return s.fail(api.InvalidRequest, "%s", err.Error())
	}
	return s.fail(api.Error, "%s", err.Error())
}

// call dispatches one RPC.
func (s *Scheduler) call(ctx context.Context, method string, body []byte) api.Response {
	var p struct {
		Description api.JobConfiguration `json:"description"`
		Query       api.TaskQuery        `json:"query"`
		OwnerRole   string               `json:"ownerRole"`
		Role        string               `json:"role"`
		Job         api.JobKey           `json:"job"`
		Instances   []int                `json:"instances"`
		ShardIDs    []int                `json:"shardIds"`
		Message     string               `json:"message"`
	}
	if len(body) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		if err := dec.Decode(&p); err != nil {
			return s.fail(api.InvalidRequest, "malformed %s request: %v", method, err)
		}
	}
	switch method {
	case "createJob":
		if err := s.CreateJob(ctx, p.Description); err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil)
	case "getTasksStatus", "getTasksWithoutConfigs":
		tasks := s.Tasks(p.Query)
		if method == "getTasksWithoutConfigs" {
			for i := range tasks {
				tasks[i].AssignedTask.Task.ExecutorConfig.Data = ""
			}
		}
		return s.ok(&api.Result{ScheduleStatusResult: &api.ScheduleStatusResult{Tasks: orEmpty(tasks)}})
	case "getJobs":
		return s.ok(&api.Result{GetJobsResult: &api.GetJobsResult{Configs: orEmpty(s.Jobs(p.OwnerRole))}})
	case "getJobSummary":
		return s.ok(&api.Result{JobSummaryResult: &api.JobSummaryResult{Summaries: orEmpty(s.JobSummaries(p.Role))}})
	case "killTasks":
		n, err := s.KillTasks(ctx, p.Job, p.Instances, p.Message)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil, fmt.Sprintf("Killing %d tasks.", n))
	case "restartShards":
		if err := s.RestartShards(ctx, p.Job, p.ShardIDs); err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil)
	case "performBackup":
		name, err := s.store.Backup(filepath.Join(s.cfg.DataDir, "backups"), s.cfg.Now())
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil, "Backup "+name)
	case "listBackups":
		names, err := storage.ListBackups(filepath.Join(s.cfg.DataDir, "backups"))
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(&api.Result{ListBackupsResult: &api.ListBackupsResult{Backups: orEmpty(names)}})
	}
	return s.fail(api.InvalidRequest, "unknown method %q", method)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JobSummaries is getJobSummary.
func (s *Scheduler) JobSummaries(role string) []api.JobSummary {
	jobs := s.Jobs(role)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]api.JobSummary, 0, len(jobs))
	for _, j := range jobs {
		sum := api.JobSummary{Job: j}
		for _, t := range s.tasks {
			if t.AssignedTask.Task.Job != j.Key {
				continue
			}
			switch st, _ := state.ParseStatus(t.Status); {
			case st == state.Pending || st == state.Throttled:
				sum.Stats.PendingTaskCount++
			case st.Active():
				sum.Stats.ActiveTaskCount++
			case st == state.Finished:
				sum.Stats.FinishedTaskCount++
			case st.Terminal():
				sum.Stats.FailedTaskCount++
			}
		}
		out = append(out, sum)
	}
	return out
}

// Serve serves the HTTP endpoints on ln until ctx ends.
func (s *Scheduler) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}
