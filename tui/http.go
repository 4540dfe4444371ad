package tui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// DefaultObserverURL is where an appliance's observer listens with fixed
// ports (Aurora's observer port).
const DefaultObserverURL = "http://127.0.0.1:1338"

// HTTPSource reads a cluster through its public HTTP APIs.
type HTTPSource struct {
	// Scheduler calls the scheduler's /api; nil makes the job views
	// unavailable.
	Scheduler *client.Client
	// ObserverURL is the observer's base URL; "{host}" in it is replaced
	// by the task's host (one observer per agent host, as in Aurora).
	ObserverURL string
	// MasterURL is the Mesos master's base URL; "" leaves the agents out.
	MasterURL string
	// StatusFunc returns the appliance's status document; nil makes the
	// overview unavailable.
	StatusFunc func(ctx context.Context) (*status.Appliance, error)
	// HTTP is the client for the observer and the master (default: 10 s
	// timeout).
	HTTP *http.Client
}

// Message is what the TUI sends with its kills, for the audit log.
const Message = "killed from aurorabox tui"

func (s *HTTPSource) httpClient() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Status implements Source.
func (s *HTTPSource) Status(ctx context.Context) (*status.Appliance, error) {
	if s.StatusFunc == nil {
		return nil, ErrUnavailable
	}
	return s.StatusFunc(ctx)
}

// Agents implements Source.
func (s *HTTPSource) Agents(ctx context.Context) ([]Agent, error) {
	if s.MasterURL == "" {
		return nil, ErrUnavailable
	}
	var st struct {
		Slaves []struct {
			ID       string         `json:"id"`
			Hostname string         `json:"hostname"`
			Active   bool           `json:"active"`
			Total    map[string]any `json:"resources"`
			Used     map[string]any `json:"used_resources"`
		} `json:"slaves"`
	}
	if err := s.getJSON(ctx, strings.TrimRight(s.MasterURL, "/")+"/master/state", &st); err != nil {
		return nil, err
	}
	num := func(m map[string]any, k string) float64 {
		f, _ := m[k].(float64)
		return f
	}
	var out []Agent
	for _, a := range st.Slaves {
		out = append(out, Agent{ID: a.ID, Hostname: a.Hostname, Active: a.Active,
			CPUs: num(a.Total, "cpus"), UsedCPUs: num(a.Used, "cpus"),
			MemMB: num(a.Total, "mem"), UsedMem: num(a.Used, "mem"),
			DiskMB: num(a.Total, "disk"), UsedDisk: num(a.Used, "disk")})
	}
	return out, nil
}

// Jobs implements Source.
func (s *HTTPSource) Jobs(ctx context.Context) ([]api.JobConfiguration, error) {
	if s.Scheduler == nil {
		return nil, ErrUnavailable
	}
	r, err := s.Scheduler.Call(ctx, "getJobs", map[string]any{"ownerRole": ""})
	if err != nil {
		return nil, err
	}
	if r.Result == nil || r.Result.GetJobsResult == nil {
		return nil, nil
	}
	return r.Result.GetJobsResult.Configs, nil
}

// Tasks implements Source.
func (s *HTTPSource) Tasks(ctx context.Context, q api.TaskQuery) ([]api.ScheduledTask, error) {
	if s.Scheduler == nil {
		return nil, ErrUnavailable
	}
	r, err := s.Scheduler.Call(ctx, "getTasksWithoutConfigs", map[string]any{"query": q})
	if err != nil {
		return nil, err
	}
	if r.Result == nil || r.Result.ScheduleStatusResult == nil {
		return nil, nil
	}
	return r.Result.ScheduleStatusResult.Tasks, nil
}

// Kill implements Source.
func (s *HTTPSource) Kill(ctx context.Context, job api.JobKey, instances []int) error {
	if s.Scheduler == nil {
		return ErrUnavailable
	}
	_, err := s.Scheduler.Call(ctx, "killTasks", map[string]any{"job": job, "instances": instances, "message": Message})
	return err
}

// Restart implements Source.
func (s *HTTPSource) Restart(ctx context.Context, job api.JobKey, instances []int) error {
	if s.Scheduler == nil {
		return ErrUnavailable
	}
	_, err := s.Scheduler.Call(ctx, "restartShards", map[string]any{"job": job, "shardIds": instances})
	return err
}

// observer is the base URL of the observer that sees t.
func (s *HTTPSource) observer(t TaskRef) string {
	base := s.ObserverURL
	if base == "" {
		base = DefaultObserverURL
	}
	host := t.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return strings.TrimRight(strings.ReplaceAll(base, "{host}", host), "/")
}

// statusError is a non-2xx answer.
type statusError struct {
	url  string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.url, e.code, strings.TrimSpace(e.body))
}

func (s *HTTPSource) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		msg := string(b[:min(len(b), 200)])
		var je observerapi.Error
		if json.Unmarshal(b, &je) == nil && je.Error != "" {
			msg = je.Error
		}
		return nil, &statusError{u, resp.StatusCode, msg}
	}
	return b, nil
}

func (s *HTTPSource) getJSON(ctx context.Context, u string, v any) error {
	b, err := s.get(ctx, u, 64<<20)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %v", u, err)
	}
	return nil
}

func notFound(err error) bool {
	se, ok := err.(*statusError)
	return ok && se.code == http.StatusNotFound
}

// Task implements Source.
func (s *HTTPSource) Task(ctx context.Context, t TaskRef) (*ObservedTask, error) {
	base := s.observer(t)
	var tasks map[string]observerapi.Task
	if err := s.getJSON(ctx, base+observerapi.TaskPath(t.ID), &tasks); err != nil {
		if notFound(err) {
			return nil, ErrNotObserved
		}
		return nil, err
	}
	ot, ok := tasks[t.ID]
	if !ok {
		return nil, ErrNotObserved
	}
	var runs map[string]observerapi.Run
	if err := s.getJSON(ctx, base+observerapi.ProcessesPath(t.ID), &runs); err != nil && !notFound(err) {
		return nil, err
	}
	return observed(ot, runs), nil
}

// observed merges a task and its processes' latest runs.
func observed(ot observerapi.Task, runs map[string]observerapi.Run) *ObservedTask {
	out := &ObservedTask{ID: ot.TaskID, State: ot.State, User: ot.User, Hostname: ot.Hostname, Sandbox: ot.Sandbox,
		Launched: ot.LaunchTimestamp, Ports: ot.Ports, CPU: ot.ResourceConsumption.CPU,
		RAM: ot.ResourceConsumption.RAM, Disk: ot.ResourceConsumption.Disk}
	seen := map[string]bool{}
	for name, r := range runs {
		p := Process{Name: name, State: r.State, Run: r.ProcessRun, Code: r.ReturnCode}
		if r.StartTime != nil {
			p.Start = *r.StartTime
		}
		if r.StopTime != nil {
			p.Stop = *r.StopTime
		}
		if r.Used != nil {
			p.CPU, p.RAM, p.Active = r.Used.CPU, r.Used.RAM, true
		}
		seen[name] = true
		out.Processes = append(out.Processes, p)
	}
	for _, names := range ot.Processes {
		for _, name := range names {
			if !seen[name] {
				seen[name] = true
				out.Processes = append(out.Processes, Process{Name: name, State: "WAITING", Run: -1})
			}
		}
	}
	sort.Slice(out.Processes, func(i, j int) bool { return out.Processes[i].Name < out.Processes[j].Name })
	return out
}

// Log implements Source.
func (s *HTTPSource) Log(ctx context.Context, t TaskRef, process string, run int, stream string, offset, length int64) (observerapi.Chunk, error) {
	var c observerapi.Chunk
	err := s.getJSON(ctx, s.observer(t)+observerapi.LogDataPath(t.ID, process, run, stream, offset, length), &c)
	return c, err
}

// File implements Source.
func (s *HTTPSource) File(ctx context.Context, t TaskRef, path string, offset, length int64) (observerapi.Chunk, error) {
	var c observerapi.Chunk
	err := s.getJSON(ctx, s.observer(t)+observerapi.FileDataPath(t.ID, path, offset, length), &c)
	return c, err
}

// Dir implements Source: the observer's JSON listing (/j/browse).
func (s *HTTPSource) Dir(ctx context.Context, t TaskRef, path string) (observerapi.Listing, error) {
	var l observerapi.Listing
	err := s.getJSON(ctx, s.observer(t)+observerapi.BrowsePath(t.ID, path), &l)
	return l, err
}
