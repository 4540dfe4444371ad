package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// t0 is the fake clock's now.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func ms(d time.Duration) int64 { return t0.Add(-d).UnixMilli() }

// secs is d before t0 in seconds since the epoch, as the observer writes
// times.
func secs(d time.Duration) float64 { return float64(ms(d)) / 1000 }

// fake is a Source with a small cluster in memory.
type fake struct {
	mu        sync.Mutex
	status    *status.Appliance
	statusErr error
	agents    []Agent
	agentsErr error
	jobs      []api.JobConfiguration
	tasks     []api.ScheduledTask
	tasksErr  error
	obs       map[string]*ObservedTask
	logs      map[string]string                 // task/process/run/stream
	dirs      map[string][]observerapi.DirEntry // task/path
	files     map[string]string                 // task/path
	calls     []string
	maxChunk  int64
}

func task(job api.JobKey, inst int, id, host, status string, events ...api.TaskEvent) api.ScheduledTask {
	cpu, ram, disk := 0.1, int64(16), int64(16)
	return api.ScheduledTask{Status: status, TaskEvents: events, AssignedTask: api.AssignedTask{
		TaskID: id, SlaveHost: host, InstanceID: inst,
		AssignedPorts: map[string]int{"http": 31000 + inst},
		Task: api.TaskConfig{Job: job, IsService: true,
			Resources: []api.Resource{{NumCpus: &cpu}, {RAMMb: &ram}, {DiskMb: &disk}}}}}
}

func ev(d time.Duration, status, msg string) api.TaskEvent {
	return api.TaskEvent{Timestamp: ms(d), Status: status, Message: msg}
}

var (
	hello   = api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}
	batch   = api.JobKey{Role: "www-data", Environment: "test", Name: "batch"}
	report  = api.JobKey{Role: "ads", Environment: "staging", Name: "cron_report"}
	helloID = "www-data-prod-hello-0-1f2e3d4c"
)

func newFake() *fake {
	code0 := 0
	f := &fake{
		status: &status.Appliance{Version: 1, Running: true, Healthy: true, Cluster: "devcluster", DataDir: "/home/me/.aurorabox",
			Isolation:  "cgroups-v2",
			Supervisor: &status.Supervisor{PID: 4242, Version: "v0.1.0", UptimeSeconds: 3723, Ready: true},
			Components: []status.Component{
				{Name: "zookeeper", PID: 4243, Address: "127.0.0.1:2181", Health: "healthy", UptimeSeconds: 3722},
				{Name: "master", PID: 4244, Address: "127.0.0.1:5050", Health: "healthy", UptimeSeconds: 3722},
				{Name: "agent", PID: 4301, Address: "127.0.0.1:5051", Health: "healthy", UptimeSeconds: 65, Restarts: 1},
				{Name: "scheduler", PID: 4246, Address: "127.0.0.1:8081", Health: "healthy", UptimeSeconds: 3720},
				{Name: "observer", PID: 0, Address: "127.0.0.1:1338", Health: "unhealthy", Restarts: 3, LastError: "exited: exit status 1"},
			}},
		agents: []Agent{{ID: "S0", Hostname: "127.0.0.1", Active: true, CPUs: 4, UsedCPUs: 0.3, MemMB: 7900, UsedMem: 48, DiskMB: 50000, UsedDisk: 48}},
		jobs: []api.JobConfiguration{
			{Key: hello, InstanceCount: 3},
			{Key: batch, InstanceCount: 1},
			{Key: report, InstanceCount: 1, CronSchedule: "0 * * * *"},
		},
		tasks: []api.ScheduledTask{
			task(hello, 0, helloID, "127.0.0.1", "RUNNING",
				ev(5*time.Minute, "PENDING", ""), ev(290*time.Second, "ASSIGNED", ""), ev(289*time.Second, "STARTING", "Initializing sandbox."), ev(288*time.Second, "RUNNING", "")),
			task(hello, 1, "www-data-prod-hello-1-0ld", "127.0.0.2", "FAILED",
				ev(2*time.Hour, "PENDING", ""), ev(time.Hour, "FAILED", "Process hello failed with exit status 1")),
			task(hello, 1, "www-data-prod-hello-1-9a8b", "127.0.0.2", "RUNNING",
				ev(59*time.Minute, "PENDING", ""), ev(58*time.Minute, "RUNNING", "")),
			task(hello, 2, "www-data-prod-hello-2-5e6f", "", "PENDING",
				ev(30*time.Second, "PENDING", "Insufficient resources: ram")),
			task(batch, 0, "www-data-test-batch-0-7c7c", "127.0.0.1", "FINISHED",
				ev(3*24*time.Hour, "PENDING", ""), ev(3*24*time.Hour-time.Minute, "FINISHED", "Task finished.")),
		},
		obs: map[string]*ObservedTask{helloID: {ID: helloID, State: "ACTIVE", User: "www-data", Hostname: "127.0.0.1",
			CPU: 0.05, RAM: 5 << 20, Disk: 20 << 10, Launched: float64(ms(5*time.Minute)) / 1000,
			Processes: []Process{
				{Name: "cleanup", State: "WAITING", Run: -1},
				{Name: "hello", State: "RUNNING", Run: 1, Start: float64(ms(100*time.Second)) / 1000, CPU: 0.05, RAM: 4<<20 + 100<<10, Active: true},
				{Name: "setup", State: "SUCCESS", Run: 0, Start: float64(ms(287*time.Second)) / 1000, Stop: float64(ms(286*time.Second)) / 1000, Code: &code0},
			}}},
		logs: map[string]string{
			helloID + "/hello/1/stdout": strings.Repeat("hello world\n", 30),
			helloID + "/hello/1/stderr": "warning: \x1b[31mred\x1b[0m text\tand a tab\n",
			helloID + "/setup/0/stdout": "setting up\n",
		},
		dirs: map[string][]observerapi.DirEntry{
			helloID + "/": {
				{Name: ".logs", Path: ".logs", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: secs(5 * time.Minute)},
				{Name: "hello_world.aurora", Path: "hello_world.aurora", Kind: observerapi.KindFile, Mode: "-rw-r--r--", Size: 312, Mtime: secs(5 * time.Minute)},
				{Name: "up-link", Path: "up-link", Kind: observerapi.KindSymlink, Target: observerapi.KindOutside, Mode: "Lrwxrwxrwx", Size: 30, Mtime: secs(5 * time.Minute)},
			},
			helloID + "/.logs": {
				{Name: "hello", Path: ".logs/hello", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: secs(5 * time.Minute)},
				{Name: "setup", Path: ".logs/setup", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: secs(5 * time.Minute)},
				{Name: "pipe", Path: ".logs/pipe", Kind: observerapi.KindOther, Mode: "prw-r--r--", Mtime: secs(5 * time.Minute)},
			},
		},
		files: map[string]string{
			helloID + "/hello_world.aurora": "hello = Process(\n  name = 'hello',\n  cmdline = 'while true; do echo hello world; sleep 10; done')\n",
		},
		maxChunk: 1 << 20,
	}
	return f
}

func (f *fake) call(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fake) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fake) Status(ctx context.Context) (*status.Appliance, error) {
	return f.status, f.statusErr
}

func (f *fake) Agents(ctx context.Context) ([]Agent, error) { return f.agents, f.agentsErr }

func (f *fake) Jobs(ctx context.Context) ([]api.JobConfiguration, error) {
	f.call("getJobs")
	return f.jobs, f.tasksErr
}

func (f *fake) Tasks(ctx context.Context, q api.TaskQuery) ([]api.ScheduledTask, error) {
	f.call("getTasksWithoutConfigs %s/%s/%s %v", q.Role, q.Environment, q.JobName, q.TaskIDs)
	if f.tasksErr != nil {
		return nil, f.tasksErr
	}
	var out []api.ScheduledTask
	for _, t := range f.tasks {
		k := t.AssignedTask.Task.Job
		if (q.Role != "" && q.Role != k.Role) || (q.Environment != "" && q.Environment != k.Environment) || (q.JobName != "" && q.JobName != k.Name) {
			continue
		}
		if len(q.TaskIDs) > 0 && q.TaskIDs[0] != t.AssignedTask.TaskID {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func (f *fake) Kill(ctx context.Context, job api.JobKey, instances []int) error {
	f.call("killTasks %s %v", keyString(job), instances)
	return nil
}

func (f *fake) Restart(ctx context.Context, job api.JobKey, instances []int) error {
	f.call("restartShards %s %v", keyString(job), instances)
	return nil
}

func (f *fake) Task(ctx context.Context, t TaskRef) (*ObservedTask, error) {
	if o, ok := f.obs[t.ID]; ok {
		return o, nil
	}
	return nil, ErrNotObserved
}

// chunk follows the observer's readChunk.
func (f *fake) chunk(data string, offset, length int64) observerapi.Chunk {
	size := int64(len(data))
	if offset < 0 || offset > size {
		offset = size
	}
	if length < 0 {
		length = size - offset
	}
	length = min(length, f.maxChunk, size-offset)
	return observerapi.Chunk{Offset: offset, Length: length, Data: data[offset : offset+length]}
}

func (f *fake) Log(ctx context.Context, t TaskRef, process string, run int, stream string, offset, length int64) (observerapi.Chunk, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.logs[fmt.Sprintf("%s/%s/%d/%s", t.ID, process, run, stream)]
	if !ok {
		return observerapi.Chunk{}, fmt.Errorf("no such log")
	}
	return f.chunk(data, offset, length), nil
}

func (f *fake) appendLog(k, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs[k] += s
}

func (f *fake) Dir(ctx context.Context, t TaskRef, path string) (observerapi.Listing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	es, ok := f.dirs[t.ID+"/"+path]
	if !ok {
		return observerapi.Listing{}, fmt.Errorf("no such dir %q", path)
	}
	return observerapi.Listing{TaskID: t.ID, Path: path, Entries: es}, nil
}

func (f *fake) File(ctx context.Context, t TaskRef, path string, offset, length int64) (observerapi.Chunk, error) {
	data, ok := f.files[t.ID+"/"+path]
	if !ok {
		return observerapi.Chunk{}, fmt.Errorf("no such file")
	}
	return f.chunk(data, offset, length), nil
}
