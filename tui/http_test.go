package tui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/observer/observerapi"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// observerGolden is one of the observer's own golden answers, so that a
// change of the observer's JSON or pages shows here too.
func observerGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "observer", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeCluster serves a scheduler /api, an observer and a master from
// canned answers, and records what was asked.
type fakeCluster struct {
	mu    sync.Mutex
	asked []string
	srv   *httptest.Server
}

func newFakeCluster(t *testing.T) *fakeCluster {
	fc := &fakeCluster{}
	files := map[string][]byte{
		"/j/task/www-data-prod-hello-0-aaaa":                        observerGolden(t, "task.json"),
		"/j/process/www-data-prod-hello-0-aaaa":                     observerGolden(t, "processes.json"),
		"/j/browse/www-data-prod-hello-0-aaaa":                      observerGolden(t, "browse.json"),
		"/j/browse/www-data-prod-hello-0-aaaa/data":                 observerGolden(t, "browse_data.json"),
		"/logdata/www-data-prod-hello-0-aaaa/hello/1/stdout":        observerGolden(t, "logdata.json"),
		"/filedata/www-data-prod-hello-0-aaaa/data/notes%20one.txt": observerGolden(t, "filedata.json"),
		"/master/state": []byte(`{"slaves": [{"id": "S0", "hostname": "127.0.0.1", "active": true,
			"resources": {"cpus": 4, "mem": 7900, "disk": 50000, "ports": "[31000-32000]"},
			"used_resources": {"cpus": 0.1, "mem": 16, "disk": 16, "gpus": 0}}]}`),
	}
	fc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			body, _ := io.ReadAll(r.Body)
			fc.mu.Lock()
			fc.asked = append(fc.asked, r.URL.Path+" "+string(body))
			fc.mu.Unlock()
			resp := api.Response{ResponseCode: api.OK, Result: &api.Result{}}
			switch r.URL.Path {
			case "/api/getJobs":
				resp.Result.GetJobsResult = &api.GetJobsResult{Configs: []api.JobConfiguration{{Key: hello, InstanceCount: 3}}}
			case "/api/getTasksWithoutConfigs":
				resp.Result.ScheduleStatusResult = &api.ScheduleStatusResult{Tasks: []api.ScheduledTask{task(hello, 0, "t0", "h", "RUNNING")}}
			case "/api/killTasks":
				resp.ResponseCode = api.InvalidRequest
				resp.Details = []api.ResponseDetail{{Message: "no such instance"}}
			}
			json.NewEncoder(w).Encode(resp)
			return
		}
		fc.mu.Lock()
		fc.asked = append(fc.asked, r.URL.RequestURI())
		fc.mu.Unlock()
		if r.URL.EscapedPath() == "/j/browse/www-data-prod-hello-0-aaaa/escapes/fifo" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(observerapi.Error{Error: "escapes/fifo: not a directory"})
			return
		}
		b, ok := files[r.URL.EscapedPath()]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(fc.srv.Close)
	return fc
}

func (fc *fakeCluster) requests() []string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	out := fc.asked
	fc.asked = nil
	return out
}

func (fc *fakeCluster) source(t *testing.T) *HTTPSource {
	c, err := client.New(map[string]client.Cluster{"test": {Name: "test", SchedulerURI: fc.srv.URL}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return &HTTPSource{Scheduler: c, ObserverURL: fc.srv.URL, MasterURL: fc.srv.URL + "/"}
}

func TestHTTPObserver(t *testing.T) {
	fc := newFakeCluster(t)
	s := fc.source(t)
	ctx := context.Background()
	ref := TaskRef{ID: "www-data-prod-hello-0-aaaa", Host: "agent-one"}

	ot, err := s.Task(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	code0 := 0
	want := []Process{
		{Name: "cleanup", State: "WAITING", Run: -1},
		{Name: "hello", State: "RUNNING", Run: 1, Start: 1704164648},
		{Name: "setup", State: "SUCCESS", Run: 0, Start: 1704164646, Stop: 1704164647, Code: &code0},
	}
	if !reflect.DeepEqual(ot.Processes, want) {
		t.Errorf("processes %+v", ot.Processes)
	}
	if ot.State != "ACTIVE" || ot.Disk != 12345 || ot.Hostname != "agent-one" || ot.Ports["http"] != 31001 {
		t.Errorf("task %+v", ot)
	}
	if got := fc.requests(); !reflect.DeepEqual(got, []string{"/j/task/www-data-prod-hello-0-aaaa", "/j/process/www-data-prod-hello-0-aaaa"}) {
		t.Errorf("asked %v", got)
	}
	if _, err := s.Task(ctx, TaskRef{ID: "nope"}); !errors.Is(err, ErrNotObserved) {
		t.Errorf("unknown task: %v", err)
	}
	fc.requests()

	c, err := s.Log(ctx, ref, "hello", 1, "stdout", -1, 0)
	if err != nil || c.Data != "hello <world>\nhello <world>\n" || c.Length != 28 {
		t.Errorf("log chunk %+v %v", c, err)
	}
	c, err = s.File(ctx, ref, "data/notes one.txt", 0, 4096)
	if err != nil || c.Data != "some notes\n" {
		t.Errorf("file chunk %+v %v", c, err)
	}
	if got := fc.requests(); !reflect.DeepEqual(got, []string{
		"/logdata/www-data-prod-hello-0-aaaa/hello/1/stdout?offset=-1&length=0",
		"/filedata/www-data-prod-hello-0-aaaa/data/notes%20one.txt?offset=0&length=4096"}) {
		t.Errorf("asked %v", got)
	}

	// The sandbox is listed by the observer's JSON listing, /j/browse.
	l, err := s.Dir(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	const mtime = 1704164645 // the fixture's t0
	wantEntries := []observerapi.DirEntry{
		{Name: ".logs", Path: ".logs", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: mtime},
		{Name: "data", Path: "data", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: mtime},
		{Name: "escapes", Path: "escapes", Kind: observerapi.KindDir, Mode: "drwxr-xr-x", Mtime: mtime},
		{Name: "notes-link", Path: "notes-link", Kind: observerapi.KindSymlink, Target: observerapi.KindFile, Mode: "Lrwxrwxrwx", Size: 11, Mtime: mtime},
		{Name: "up-link", Path: "up-link", Kind: observerapi.KindSymlink, Target: observerapi.KindOutside, Mode: "Lrwxrwxrwx", Size: 30, Mtime: mtime},
	}
	if l.TaskID != ref.ID || l.Path != "" || l.Truncated || !reflect.DeepEqual(l.Entries, wantEntries) {
		t.Errorf("listing %+v\nwant entries\n%+v", l, wantEntries)
	}
	l, err = s.Dir(ctx, ref, "data")
	if err != nil || l.Path != "data" || len(l.Entries) != 2 || l.Entries[0].Path != "data/notes.txt" || !l.Entries[0].IsFile() || l.Entries[1].Name != "page.html" {
		t.Errorf("data listing %+v %v", l, err)
	}
	if got := fc.requests(); !reflect.DeepEqual(got, []string{"/j/browse/www-data-prod-hello-0-aaaa", "/j/browse/www-data-prod-hello-0-aaaa/data"}) {
		t.Errorf("asked %v", got)
	}
	// An error answer's message is the observer's JSON error.
	_, err = s.Dir(ctx, ref, "escapes/fifo")
	if err == nil || !strings.Contains(err.Error(), "HTTP 400 escapes/fifo: not a directory") {
		t.Errorf("a refused listing: %v", err)
	}
}

func TestHTTPObserverPerHost(t *testing.T) {
	s := &HTTPSource{ObserverURL: "http://{host}:1338/"}
	if got := s.observer(TaskRef{ID: "x", Host: "agent-7"}); got != "http://agent-7:1338" {
		t.Errorf("observer URL %q", got)
	}
	if got := (&HTTPSource{}).observer(TaskRef{}); got != DefaultObserverURL {
		t.Errorf("default observer URL %q", got)
	}
}

func TestHTTPScheduler(t *testing.T) {
	fc := newFakeCluster(t)
	s := fc.source(t)
	ctx := context.Background()
	jobs, err := s.Jobs(ctx)
	if err != nil || len(jobs) != 1 || jobs[0].Key != hello {
		t.Fatalf("jobs %v %v", jobs, err)
	}
	ts, err := s.Tasks(ctx, api.TaskQuery{Role: "www-data", JobName: "hello"})
	if err != nil || len(ts) != 1 {
		t.Fatalf("tasks %v %v", ts, err)
	}
	if err := s.Restart(ctx, hello, []int{2}); err != nil {
		t.Fatal(err)
	}
	err = s.Kill(ctx, hello, []int{1, 2})
	if err == nil || !strings.Contains(err.Error(), "no such instance") {
		t.Errorf("a refused kill: %v", err)
	}
	want := []string{
		`/api/getJobs {"ownerRole":""}`,
		`/api/getTasksWithoutConfigs {"query":{"role":"www-data","jobName":"hello"}}`,
		`/api/restartShards {"job":{"role":"www-data","environment":"prod","name":"hello"},"shardIds":[2]}`,
		`/api/killTasks {"instances":[1,2],"job":{"role":"www-data","environment":"prod","name":"hello"},"message":"killed from aurorabox tui"}`,
	}
	if got := fc.requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("asked\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestHTTPMasterAndStatus(t *testing.T) {
	fc := newFakeCluster(t)
	s := fc.source(t)
	ctx := context.Background()
	as, err := s.Agents(ctx)
	want := []Agent{{ID: "S0", Hostname: "127.0.0.1", Active: true, CPUs: 4, UsedCPUs: 0.1, MemMB: 7900, UsedMem: 16, DiskMB: 50000, UsedDisk: 16}}
	if err != nil || !reflect.DeepEqual(as, want) {
		t.Errorf("agents %+v %v", as, err)
	}
	if _, err := s.Status(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("status without a source: %v", err)
	}
	s.StatusFunc = func(context.Context) (*status.Appliance, error) { return &status.Appliance{Cluster: "c"}, nil }
	if st, err := s.Status(ctx); err != nil || st.Cluster != "c" {
		t.Errorf("status %v %v", st, err)
	}
	none := &HTTPSource{}
	if _, err := none.Agents(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("agents without a master: %v", err)
	}
	if _, err := none.Jobs(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("jobs without a scheduler: %v", err)
	}
}

// The whole TUI over HTTP: the model drills down to the observer's task.
func TestModelOverHTTP(t *testing.T) {
	fc := newFakeCluster(t)
	s := fc.source(t)
	m := New(s, Options{Now: func() time.Time { return t0 }})
	settle(t, m, m.Init())
	press(t, m, "enter")
	contains(t, m, "www-data   prod     hello               3 1 RUNNING")
}
