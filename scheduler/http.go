package scheduler

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
	"github.com/aurorabox/aurorabox/scheduler/ui"
)

// Handler serves the API and the operator endpoints.
func (s *Scheduler) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.serveAPI)
	mux.HandleFunc("/apibeta/", s.serveAPI)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK\n") })
	mux.HandleFunc("/leaderhealth", s.serveLeaderHealth)
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
	mux.HandleFunc("/offers", s.serveOffers)
	mux.HandleFunc("/quotas", s.serveQuotas)
	mux.HandleFunc("/maintenance", s.serveMaintenance)
	mux.HandleFunc("/tiers", s.serveTiers)
	mux.HandleFunc("/cron", s.serveCron)
	// The UI's own handler answers wrong methods, so no method patterns.
	// It shows pending reasons (the scheduler is a ui.PendingReasonSource).
	var _ ui.PendingReasonSource = s
	h := ui.Handler(s, ui.Config{ObserverURL: s.observerURL, Now: s.cfg.Now})
	for _, p := range []string{"/scheduler", "/scheduler/", "/updates", "/cronjobs"} {
		mux.Handle(p, h)
	}
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/scheduler", http.StatusFound) })
	return s.life.track(mux)
}

// serveLeaderHealth is /leaderhealth on the elected scheduler. As in
// Aurora, it leads for the world once it is advertised in the ServerSet,
// which happens when it first registers with Mesos (lifecycle ACTIVE):
// from then on 200. Before that it answers as a standby would (§8.6): 503
// while another scheduler is advertised (a leader that has not yet lost
// its ZooKeeper session), 502 while none is.
func (s *Scheduler) serveLeaderHealth(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	leading := s.advertised
	s.mu.Unlock()
	switch {
	case leading:
		io.WriteString(w, "OK\n")
	case s.cfg.LeaderFinder != nil && leaderKnown(s.cfg.LeaderFinder):
		http.Error(w, "not the leading scheduler: awaiting registration with Mesos, another scheduler is advertised", http.StatusServiceUnavailable)
	default:
		http.Error(w, "no leading scheduler: awaiting registration with Mesos", http.StatusBadGateway)
	}
}

func leaderKnown(find func() (string, bool)) bool {
	_, ok := find()
	return ok
}

// lifecycleStates are Aurora's SchedulerLifecycle states, exported in
// /vars as scheduler_lifecycle_<STATE> (§8.6).
var lifecycleStates = []string{"IDLE", "PREPARING_STORAGE", "STORAGE_PREPARED", "LEADER_AWAITING_REGISTRATION", "ACTIVE", "DEAD"}

// vars are the scheduler's metrics, under Aurora's names where it has them.
func (s *Scheduler) vars() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := 0
	if s.registered {
		reg = 1
	}
	v := map[string]any{"framework_registered": reg, "jobs": len(s.listJobs("", true)), "outstanding_offers": len(s.offers)}
	for _, l := range lifecycleStates {
		v["scheduler_lifecycle_"+l] = 0
	}
	// Storage is ready before the scheduler serves; it leads once it
	// serves; ACTIVE from the first registration on, as in Aurora (a
	// disconnection from the master shows in framework_registered only).
	if s.active {
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
	v["reconciliation_explicit_runs"] = s.explicitReconciliations
	v["reconciliation_implicit_runs"] = s.implicitReconciliations
	v["reconciliation_task_updates"] = s.reconcileUpdates
	active := 0
	for _, u := range s.updates {
		if u.ctl.Status.Active() {
			active++
		}
	}
	v["job_updates"], v["job_updates_active"] = len(s.updates), active
	v["job_update_agent_reservations"], v["job_update_agent_reservations_made"] = len(s.reserved), s.reservationsMade
	modes := map[string]int{}
	for _, m := range s.maintenance {
		modes[string(m)]++
	}
	for _, m := range []string{api.ModeScheduled, api.ModeDraining, api.ModeDrained} {
		v["maintenance_hosts_"+m] = modes[m]
	}
	s.cronVars(v)
	s.slaVars(v)
	s.preemptorVars(v)
	s.schedulingVars(v)
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
	user, authed := s.authenticate(r)
	if !authed && !readOnlyRPCs[method] {
		w.Header().Set("WWW-Authenticate", `Basic realm="Aurora"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(s.fail(api.AuthFailed, "%s requires valid HTTP basic credentials.", method))
		return
	}
	body, ok := s.readAPIBody(w, r)
	if !ok {
		return
	}
	resp := s.call(context.WithValue(r.Context(), userKey{}, user), method, body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

// readAPIBody reads an API request's body, of at most
// limits.APIRequestBytes. A larger body is answered with HTTP 413 and an
// INVALID_REQUEST that states the limit, an unreadable one with 400; then
// ok is false.
func (s *Scheduler) readAPIBody(w http.ResponseWriter, r *http.Request) (body []byte, ok bool) {
	tooLarge := func() ([]byte, bool) {
		s.writeAPIError(w, http.StatusRequestEntityTooLarge, s.fail(api.InvalidRequest,
			"Request body too large: the scheduler accepts at most %d bytes (%s).", limits.APIRequestBytes, formatBytes(limits.APIRequestBytes)))
		return nil, false
	}
	if r.ContentLength > limits.APIRequestBytes {
		return tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limits.APIRequestBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return tooLarge()
		}
		s.writeAPIError(w, http.StatusBadRequest, s.fail(api.InvalidRequest, "Cannot read the request body: %v", err))
		return nil, false
	}
	return body, true
}

// writeAPIError answers an API request that failed before its method ran
// with an HTTP status and an Aurora Response.
func (s *Scheduler) writeAPIError(w http.ResponseWriter, status int, resp api.Response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(resp)
}

// decodeParams decodes an RPC's parameters into p: the body must be one
// JSON object (or empty or null, for no parameters) and nothing after it. The
// error says what was wrong in the API's terms, never in Go's.
func decodeParams(method string, body []byte, p any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil // no parameters
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("malformed %s request: the request body must be a JSON object of the method's parameters, not %s", method, jsonKind(trimmed[0]))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(p); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te) && te.Field != "":
			return fmt.Errorf("malformed %s request: parameter %q must be %s, not %s", method, te.Field, jsonTypeOf(te.Type), describeJSONValue(te.Value))
		case errors.As(err, &te):
			return fmt.Errorf("malformed %s request: expected %s, not %s", method, jsonTypeOf(te.Type), describeJSONValue(te.Value))
		case errors.As(err, &se):
			return fmt.Errorf("malformed %s request: invalid JSON at byte %d: %v", method, se.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("malformed %s request: the JSON object ends early (truncated body?)", method)
		}
		return fmt.Errorf("malformed %s request: %v", method, err)
	}
	if off := dec.InputOffset(); int(off) < len(trimmed) {
		return fmt.Errorf("malformed %s request: unexpected data after the JSON object, at byte %d: %.20q", method, off, trimmed[off:])
	}
	return nil
}

// jsonKind names the kind of JSON value that starts with c.
func jsonKind(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	}
	return fmt.Sprintf("%q (not JSON)", c)
}

// describeJSONValue renders encoding/json's UnmarshalTypeError.Value ("array",
// "number 1e400", ...) with an article.
func describeJSONValue(v string) string {
	switch {
	case v == "array" || v == "object":
		return "an " + v
	case v == "bool":
		return "a boolean"
	case strings.HasPrefix(v, "number "):
		return "the number " + strings.TrimPrefix(v, "number ") + " (out of range)"
	case v == "":
		return "this value"
	}
	return "a " + v
}

// jsonTypeOf names the JSON that a Go type takes, without the Go type.
func jsonTypeOf(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string"
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another type"
}

// readOnlyRPCs are the RPCs of Aurora's ReadOnlyScheduler service. With
// basic authentication configured they stay open, as in Aurora
// (AURORA-1295); every other method needs credentials.
var readOnlyRPCs = map[string]bool{
	"getRoleSummary": true, "getJobSummary": true, "getTasksStatus": true, "getTasksWithoutConfigs": true,
	"getPendingReason": true, "getConfigSummary": true, "getJobs": true, "getQuota": true,
	"populateJobConfig": true, "getJobUpdateSummaries": true, "getJobUpdateDetails": true,
	"getJobUpdateDiff": true, "getTierConfigs": true,
}

// userKey carries the authenticated user in a request's context.
type userKey struct{}

// unknownUser is who made a request when no credentials were checked.
const unknownUser = "unknown"

// requestUser is the authenticated user of an API call.
func requestUser(ctx context.Context) string {
	if u, ok := ctx.Value(userKey{}).(string); ok && u != "" {
		return u
	}
	return unknownUser
}

// authenticate checks a request's basic credentials against
// Config.BasicAuth. Without BasicAuth every request passes, as unknownUser.
func (s *Scheduler) authenticate(r *http.Request) (string, bool) {
	if len(s.cfg.BasicAuth) == 0 {
		return unknownUser, true
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return unknownUser, false
	}
	want, known := s.cfg.BasicAuth[user]
	// Hash both so the comparison takes the same time whatever the lengths.
	a, b := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(want))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 || !known {
		return unknownUser, false
	}
	return user, true
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
	var te *transientError
	switch {
	case IsInvalid(err):
		return s.fail(api.InvalidRequest, "%s", err.Error())
	case errors.As(err, new(*updatingError)):
		return s.fail(api.JobUpdatingError, "%s", err.Error())
	case errors.As(err, &te):
		return s.fail(api.ErrorTransient, "%s", err.Error())
	}
	return s.fail(api.Error, "%s", err.Error())
}

// call dispatches one RPC.
func (s *Scheduler) call(ctx context.Context, method string, body []byte) api.Response {
	if r, ok := s.updateCall(ctx, method, body); ok {
		return r
	}
	if r, ok := s.cronCall(ctx, method, body); ok {
		return r
	}
	if r, ok := s.slaCall(ctx, method, body); ok {
		return r
	}
	var p struct {
		Description api.JobConfiguration               `json:"description"`
		Query       api.TaskQuery                      `json:"query"`
		OwnerRole   string                             `json:"ownerRole"`
		Role        string                             `json:"role"`
		Job         api.JobKey                         `json:"job"`
		Instances   []int                              `json:"instances"`
		ShardIDs    []int                              `json:"shardIds"`
		Message     string                             `json:"message"`
		Key         api.InstanceKey                    `json:"key"`
		Count       int                                `json:"count"`
		Quota       *api.ResourceAggregate             `json:"quota"`
		TaskID      string                             `json:"taskId"`
		Status      string                             `json:"status"`
		Settings    api.ExplicitReconciliationSettings `json:"settings"`
		Hosts       api.Hosts                          `json:"hosts"`
	}
	if err := decodeParams(method, body, &p); err != nil {
		return s.fail(api.InvalidRequest, "%v", err)
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
	case "getConfigSummary":
		sum, err := s.ConfigSummary(p.Job)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(&api.Result{ConfigSummaryResult: &api.ConfigSummaryResult{Summary: sum}})
	case "populateJobConfig":
		tc, err := s.PopulateJobConfig(p.Description)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(&api.Result{PopulateJobResult: &api.PopulateJobResult{TaskConfig: tc}})
	case "getQuota":
		q, err := s.Quota(p.OwnerRole)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(&api.Result{GetQuotaResult: &q})
	case "getTierConfigs":
		return s.ok(&api.Result{GetTierConfigResult: tierConfigs()})
	case "getRoleSummary":
		return s.ok(&api.Result{RoleSummaryResult: &api.RoleSummaryResult{Summaries: s.RoleSummaries()}})
	case "getPendingReason":
		rs, err := s.PendingReasons(p.Query)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(&api.Result{GetPendingReasonResult: &api.GetPendingReasonResult{Reasons: rs}})
	case "addInstances":
		ids, err := s.AddInstances(ctx, p.Key, p.Count)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil, fmt.Sprintf("Added instances %v.", ids))
	case "setQuota":
		if err := s.SetQuota(p.OwnerRole, p.Quota); err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil)
	case "forceTaskState":
		note, err := s.ForceTaskState(ctx, p.TaskID, p.Status, requestUser(ctx))
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil, note)
	case "snapshot":
		// bbolt writes every change through with an fsync, so the store is
		// always its own consistent snapshot.
		return s.ok(nil, "Nothing to do: the store is written through (fsynced) on every change, so it is always a consistent snapshot; performBackup copies it.")
	case "triggerExplicitTaskReconciliation":
		note, err := s.TriggerExplicitReconciliation(ctx, p.Settings)
		if err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil, note)
	case "triggerImplicitTaskReconciliation":
		if err := s.TriggerImplicitReconciliation(ctx); err != nil {
			return s.errResponse(err)
		}
		return s.ok(nil)
	case "pruneTasks":
		n, skipped, err := s.PruneTasks(p.Query)
		if err != nil {
			return s.errResponse(err)
		}
		msgs := []string{fmt.Sprintf("Pruned %d tasks.", n)}
		if skipped > 0 {
			msgs = append(msgs, fmt.Sprintf("%d active tasks matched and were left alone.", skipped))
		}
		return s.ok(nil, msgs...)
	case "startMaintenance", "drainHosts", "maintenanceStatus", "endMaintenance":
		return s.maintenanceCall(ctx, method, p.Hosts)
	}
	return s.fail(api.InvalidRequest, "unknown method %q", method)
}

// maintenanceCall answers the four maintenance RPCs.
func (s *Scheduler) maintenanceCall(ctx context.Context, method string, hosts api.Hosts) api.Response {
	var (
		st    []api.HostStatus
		notes []string
		err   error
	)
	switch method {
	case "startMaintenance":
		st, notes, err = s.StartMaintenance(ctx, hosts)
	case "drainHosts":
		st, notes, err = s.DrainHosts(ctx, hosts)
	case "maintenanceStatus":
		st, notes, err = s.MaintenanceStatus(hosts)
	default:
		st, notes, err = s.EndMaintenance(ctx, hosts)
	}
	if err != nil {
		return s.errResponse(err)
	}
	st = orEmpty(st)
	var res api.Result
	switch method {
	case "startMaintenance":
		res.StartMaintenanceResult = &api.StartMaintenanceResult{Statuses: st}
	case "drainHosts":
		res.DrainHostsResult = &api.DrainHostsResult{Statuses: st}
	case "maintenanceStatus":
		res.MaintenanceStatusResult = &api.MaintenanceStatusResult{Statuses: st}
	default:
		res.EndMaintenanceResult = &api.EndMaintenanceResult{Statuses: st}
	}
	return s.ok(&res, notes...)
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// JobSummaries is getJobSummary. As in Aurora 0.11 it covers the jobs
// getJobs lists and also the jobs that only have task history left (with
// their finished and failed counts, until the history is pruned), so the
// role page still shows how they ended.
func (s *Scheduler) JobSummaries(role string) []api.JobSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	jobs := s.listJobs(role, false)
	out := make([]api.JobSummary, 0, len(jobs))
	for _, j := range jobs {
		sum := api.JobSummary{Job: j, NextCronRunMs: s.nextCronRun(j)}
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

// Serve serves the HTTP endpoints on ln until ctx ends, and returns once
// the server has shut down.
func (s *Scheduler) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	shut := make(chan struct{})
	go func() {
		defer close(shut)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		return err
	}
	<-shut
	return nil
}
