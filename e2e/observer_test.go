//go:build e2e

package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// tickerJob is a one-instance service whose process prints a line every
// 200 ms.
func tickerJob() string {
	f := 0.0
	data, _ := json.Marshal(schema.Job{
		Name: "ticker", Role: "www-data", Environment: "prod", Cluster: "devcluster", Service: true,
		Task: schema.Task{Name: "ticker", Processes: []schema.Process{{Name: "tick",
			Cmdline: `i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done`, MinDuration: &f}}},
	})
	cpus, ram, disk := 0.1, int64(16), int64(16)
	key := api.JobKey{Role: "www-data", Environment: "prod", Name: "ticker"}
	b, _ := json.Marshal(map[string]any{"description": api.JobConfiguration{
		Key: key, Owner: api.Identity{User: "www-data"}, InstanceCount: 1,
		TaskConfig: api.TaskConfig{Job: key, Owner: api.Identity{User: "www-data"}, IsService: true, MaxTaskFailures: 1,
			Resources:      []api.Resource{{NumCpus: &cpus}, {RAMMb: &ram}, {DiskMb: &disk}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}},
	}})
	return string(b)
}

// TestObserverOnAppliance runs a job on the appliance and looks at it
// through the observer that `up` started: the JSON API, the task page in
// headless Chromium (with a screenshot), the live log viewer after its
// script ran, and the scheduler's link to the observer.
func TestObserverOnAppliance(t *testing.T) {
	c := newCluster(t)
	c.up()
	sched := "http://" + c.component("scheduler").Address
	obsAddr := c.component("observer").Address
	obs := "http://" + obsAddr

	env, err := os.ReadFile(filepath.Join(c.dir, "env"))
	if err != nil || !strings.Contains(string(env), "export AURORABOX_OBSERVER_URL='"+obs+"'") {
		t.Fatalf("env file lacks the observer URL: %v\n%s", err, env)
	}

	jq(t, c.curlAuthed(sched+"/api/createJob", tickerJob()), `.responseCode == "OK"`)
	var id string
	waitFor(t, "a RUNNING instance", 30*time.Second, func() bool {
		for _, task := range tasksOf(t, sched, "ticker") {
			if task.Status == "RUNNING" {
				id = task.AssignedTask.TaskID
				return true
			}
		}
		return false
	})

	// The JSON API, checked with jq.
	waitFor(t, "the observer to show the process running", 20*time.Second, func() bool {
		out, err := exec.Command("curl", "-fsS", obs+"/j/task/"+id).Output()
		return err == nil && jqOK(string(out), `.["`+id+`"].processes.running == ["tick"]`)
	})
	ids, err := exec.Command("curl", "-fsS", obs+"/j/task_ids/active").Output()
	if err != nil {
		t.Fatal(err)
	}
	jq(t, string(ids), `.tasks | length == 1 and .[0].task_id == "`+id+`" and .[0].state == "ACTIVE" and .[0].ram > 0`)

	// The task page in a real browser.
	page := obs + "/task/" + id
	dom := chromium(t, page)
	for _, want := range []string{`<code id="task-id">` + id + `</code>`, `data-process="tick" data-state="RUNNING"`, `/logs/` + id + `/tick/0/stdout`} {
		if !strings.Contains(dom, want) {
			t.Errorf("task page lacks %q:\n%s", want, dom)
		}
	}
	screenshot(t, page)

	// The log viewer's script fetched the log into the page.
	logs := obs + "/logs/" + id + "/tick/0/stdout"
	out, err := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=3000", "--dump-dom", logs).Output()
	if err != nil {
		t.Fatalf("chromium %s: %v", logs, err)
	}
	if !strings.Contains(string(out), "tick 1\n") {
		t.Errorf("log viewer shows no ticks:\n%s", out)
	}

	// The scheduler's job page links the task to this observer.
	_, port, _ := net.SplitHostPort(obsAddr)
	jobPage, err := exec.Command("curl", "-fsS", sched+"/scheduler/www-data/prod/ticker").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(jobPage), ":"+port+"/task/"+id) {
		t.Errorf("the scheduler's job page has no observer link to %s on port %s:\n%s", id, port, jobPage)
	}
}

// jqOK reports whether jq -e filter holds on input.
func jqOK(input, filter string) bool {
	cmd := exec.Command("jq", "-e", filter)
	cmd.Stdin = strings.NewReader(input)
	return cmd.Run() == nil
}
