package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/storage"
)

// get serves a GET of path by the scheduler's handler.
func (e *knobEnv) get(path string) (int, string) {
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

// api calls an RPC through the scheduler's handler.
func (e *knobEnv) api(method string, params any) api.Response {
	e.t.Helper()
	b, _ := json.Marshal(params)
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/"+method, strings.NewReader(string(b))))
	body, _ := io.ReadAll(rec.Body)
	var r api.Response
	if rec.Code != http.StatusOK || json.Unmarshal(body, &r) != nil {
		e.t.Fatalf("%s: HTTP %d: %s", method, rec.Code, body)
	}
	return r
}

// /leaderhealth on the elected scheduler: as a standby until it has
// registered with Mesos and then advertised itself, 502 with no scheduler
// advertised, 503 with another one; 200 from then on, also while
// disconnected. /vars has framework_registered and every
// scheduler_lifecycle_<STATE> of §8.6, one of them 1.
func TestLeaderHealthAndLifecycleVars(t *testing.T) {
	var advertised string
	advertising, advertiseDone := make(chan struct{}), make(chan error)
	e := newKnobEnv(t, func(c *Config) {
		c.LeaderFinder = func() (string, bool) { return advertised, advertised != "" }
		c.Advertise = func(context.Context) error {
			close(advertising)
			return <-advertiseDone
		}
	})
	e.s.registered = false
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	advertiser := make(chan struct{})
	go func() { e.s.advertise(ctx); close(advertiser) }()
	lifecycle := func() map[string]float64 {
		_, body := e.get("/vars.json")
		var v map[string]float64
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, name := range []string{"framework_registered", "scheduler_lifecycle_IDLE", "scheduler_lifecycle_PREPARING_STORAGE",
			"scheduler_lifecycle_STORAGE_PREPARED", "scheduler_lifecycle_LEADER_AWAITING_REGISTRATION", "scheduler_lifecycle_ACTIVE",
			"scheduler_lifecycle_DEAD"} {
			x, ok := v[name]
			if !ok {
				t.Fatalf("/vars.json has no %s: %s", name, body)
			}
			if x != 0 {
				out[name] = x
			}
		}
		// The text /vars has the same, as `name value` lines.
		_, text := e.get("/vars")
		for name, x := range out {
			if !strings.Contains("\n"+text, "\n"+name+" 1\n") || x != 1 {
				t.Fatalf("/vars: %s is not 1:\n%s", name, text)
			}
		}
		return out
	}
	if code, _ := e.get("/leaderhealth"); code != http.StatusBadGateway {
		t.Errorf("/leaderhealth before registration, nothing advertised: %d, want 502", code)
	}
	advertised = "10.0.0.2:8081"
	if code, _ := e.get("/leaderhealth"); code != http.StatusServiceUnavailable {
		t.Errorf("/leaderhealth before registration, another advertised: %d, want 503", code)
	}
	if got := lifecycle(); len(got) != 1 || got["scheduler_lifecycle_LEADER_AWAITING_REGISTRATION"] != 1 {
		t.Errorf("vars before registration: %v", got)
	}
	select {
	case <-e.s.Active():
		t.Fatal("Active before registration")
	default:
	}

	if err := e.s.onSubscribed(e.ctx, "fw-1"); err != nil {
		t.Fatal(err)
	}
	<-e.s.Active()
	<-advertising
	if got := lifecycle(); len(got) != 2 || got["framework_registered"] != 1 || got["scheduler_lifecycle_ACTIVE"] != 1 {
		t.Errorf("vars once registered: %v", got)
	}
	if code, _ := e.get("/leaderhealth"); code != http.StatusServiceUnavailable {
		t.Errorf("/leaderhealth registered, not yet advertised: %d, want 503", code)
	}
	advertiseDone <- nil
	<-advertiser
	if code, body := e.get("/leaderhealth"); code != http.StatusOK {
		t.Errorf("/leaderhealth once advertised: %d %q", code, body)
	}
	e.s.setRegistered(false) // the master went away
	if code, _ := e.get("/leaderhealth"); code != http.StatusOK {
		t.Errorf("/leaderhealth while disconnected: %d, want 200 (still the advertised leader)", code)
	}
	if got := lifecycle(); len(got) != 1 || got["scheduler_lifecycle_ACTIVE"] != 1 {
		t.Errorf("vars while disconnected: %v", got)
	}
}

// performBackup writes a backup into <data dir>/backups that listBackups
// names and that restores the store as it was.
func TestPerformAndListBackups(t *testing.T) {
	e := newKnobEnv(t, nil)
	if r := e.api("listBackups", nil); r.ResponseCode != api.OK || len(r.Result.ListBackupsResult.Backups) != 0 {
		t.Fatalf("listBackups before any backup: %+v", r)
	}
	e.create("web", 2)
	r := e.api("performBackup", nil)
	if r.ResponseCode != api.OK || len(r.Details) != 1 || !strings.HasPrefix(r.Details[0].Message, "Backup scheduler-backup-") {
		t.Fatalf("performBackup: %+v", r)
	}
	name := strings.TrimPrefix(r.Details[0].Message, "Backup ")
	path := filepath.Join(e.cfg.DataDir, "backups", name)
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Fatalf("backup file %s: %v", path, err)
	}
	e.create("later", 1)
	r = e.api("listBackups", nil)
	if r.ResponseCode != api.OK || r.Result.ListBackupsResult == nil || strings.Join(r.Result.ListBackupsResult.Backups, ",") != name {
		t.Fatalf("listBackups: %+v, want [%s]", r.Result, name)
	}
	// Restored, the store has the job from before the backup only.
	e.s.Close()
	if err := storage.Restore(path, filepath.Join(e.cfg.DataDir, "scheduler.db")); err != nil {
		t.Fatal(err)
	}
	e.open()
	if got := e.jobNames(); got != "[web]" || len(e.s.Tasks(api.TaskQuery{})) != 2 {
		t.Fatalf("restored: jobs %s, %d tasks", got, len(e.s.Tasks(api.TaskQuery{})))
	}
}

// getTasksWithoutConfigs answers getTasksStatus's tasks without their
// executor config data.
func TestGetTasksWithoutConfigs(t *testing.T) {
	e := newKnobEnv(t, nil)
	e.create("web", 2)
	q := map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "web"}}
	with := e.api("getTasksStatus", q).Result.ScheduleStatusResult.Tasks
	without := e.api("getTasksWithoutConfigs", q).Result.ScheduleStatusResult.Tasks
	if len(with) != 2 || len(without) != 2 {
		t.Fatalf("%d tasks with configs, %d without; want 2 and 2", len(with), len(without))
	}
	for i := range with {
		if with[i].AssignedTask.Task.ExecutorConfig.Data != `{"name": "web"}` {
			t.Errorf("getTasksStatus: executor data %q", with[i].AssignedTask.Task.ExecutorConfig.Data)
		}
		if d := without[i].AssignedTask.Task.ExecutorConfig.Data; d != "" {
			t.Errorf("getTasksWithoutConfigs: executor data %q", d)
		}
		// Everything else is the same.
		w := with[i]
		w.AssignedTask.Task.ExecutorConfig.Data = ""
		a, _ := json.Marshal(w)
		b, _ := json.Marshal(without[i])
		if string(a) != string(b) {
			t.Errorf("getTasksWithoutConfigs differs in more than the data:\n%s\n%s", a, b)
		}
	}
	// The store keeps the data.
	if got := e.s.Tasks(api.TaskQuery{})[0].AssignedTask.Task.ExecutorConfig.Data; got != `{"name": "web"}` {
		t.Errorf("stored executor data after getTasksWithoutConfigs: %q", got)
	}
}
