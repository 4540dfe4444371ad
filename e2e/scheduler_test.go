//go:build e2e

package e2e

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/shiro"
	"github.com/go-zookeeper/zk"
)

// curlJSON posts body to url with curl and returns the answer.
func curlJSON(t *testing.T, url, body string) string {
	t.Helper()
	out, err := exec.Command("curl", "-fsS", "-H", "Content-Type: application/json", "-d", body, url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	return string(out)
}

// curlAuthed is curlJSON with the appliance's credential, given to curl
// as a netrc file so that the password stays off the command line.
func (c *cluster) curlAuthed(url, body string) string {
	c.t.Helper()
	out, err := exec.Command("curl", "-fsS", "--netrc-file", c.netrc(), "-H", "Content-Type: application/json", "-d", body, url).Output()
	if err != nil {
		c.t.Fatalf("curl %s: %v", url, err)
	}
	return string(out)
}

// netrc writes (once) a netrc file with the appliance's credential for
// its bind address, and returns its path.
func (c *cluster) netrc() string {
	c.t.Helper()
	p := filepath.Join(c.dir, "netrc")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	users, err := shiro.ReadFile(filepath.Join(c.dir, "scheduler", "shiro.ini"))
	if err != nil {
		c.t.Fatalf("the appliance's credential: %v", err)
	}
	if err := os.WriteFile(p, []byte("machine 127.0.0.1 login "+users[0].Name+" password "+users[0].Password+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func helloJob(instances int) string {
	f := 0.0
	data, _ := json.Marshal(schema.Job{
		Name: "hello", Role: "www-data", Environment: "prod", Cluster: "devcluster", Service: true,
		Task: schema.Task{Name: "hello", Processes: []schema.Process{{Name: "main", Cmdline: "sleep 600", MinDuration: &f}}},
	})
	cpus, ram, disk := 0.1, int64(16), int64(16)
	key := api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}
	b, _ := json.Marshal(map[string]any{"description": api.JobConfiguration{
		Key: key, Owner: api.Identity{User: "www-data"}, InstanceCount: instances,
		TaskConfig: api.TaskConfig{Job: key, Owner: api.Identity{User: "www-data"}, IsService: true, MaxTaskFailures: 1,
			Resources:      []api.Resource{{NumCpus: &cpus}, {RAMMb: &ram}, {DiskMb: &disk}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}},
	}})
	return string(b)
}

// tasksByStatus returns "instance:status" of a job's tasks, sorted.
func tasksOf(t *testing.T, sched, job string) []api.ScheduledTask {
	t.Helper()
	var r api.Response
	json.Unmarshal([]byte(curlJSON(t, sched+"/api/getTasksStatus", `{"query": {"role": "www-data", "environment": "prod", "jobName": "`+job+`"}}`)), &r)
	return r.Result.ScheduleStatusResult.Tasks
}

func count(ts []api.ScheduledTask, f func(api.ScheduledTask) bool) int {
	n := 0
	for _, t := range ts {
		if f(t) {
			n++
		}
	}
	return n
}

func active(t api.ScheduledTask) bool {
	switch t.Status {
	case "FINISHED", "FAILED", "KILLED", "LOST":
		return false
	}
	return true
}

// TestSchedulerOnAppliance drives the appliance's scheduler with curl and
// jq: 3 instances run through the real executor, one is killed and one
// restarted while a failing batch job runs into max_task_failures, and the
// scheduler is killed with SIGKILL in the middle of it all. Afterwards no
// task is lost or duplicated and the framework id is the same. Along the
// way: discovery info at the master, the leader's ServerSet member, the job
// page in Chromium, and a standby scheduler redirecting to the leader.
func TestSchedulerOnAppliance(t *testing.T) {
	c := newCluster(t)
	c.up()
	sched := "http://" + c.component("scheduler").Address
	master := "http://" + c.component("master").Address
	key := `{"role": "www-data", "environment": "prod", "name": "hello"}`
	jq(t, c.curlAuthed(sched+"/api/createJob", helloJob(3)), `.responseCode == "OK"`)
	waitFor(t, "3 RUNNING instances", 30*time.Second, func() bool {
		return count(tasksOf(t, sched, "hello"), func(t api.ScheduledTask) bool { return t.Status == "RUNNING" }) == 3
	})

	// The master shows the tasks with Aurora's discovery info (§2.4 test_discovery_info).
	state, err := exec.Command("curl", "-fsS", master+"/master/state").Output()
	if err != nil {
		t.Fatal(err)
	}
	jq(t, string(state), `.frameworks | length == 1 and .[0].name == "Aurora" and (.[0].tasks | length == 3) and all(.[0].tasks[]; .discovery.name == "hello.prod.www-data" and .name == "www-data/prod/hello")`)
	var st struct {
		Frameworks []struct{ ID string } `json:"frameworks"`
	}
	json.Unmarshal(state, &st)
	fwID := st.Frameworks[0].ID

	// The job page in a real browser lists the instances as RUNNING.
	page := sched + "/scheduler/www-data/prod/hello"
	dom := chromium(t, page)
	for _, want := range []string{`data-instance="0" data-status="RUNNING"`, `data-instance="2" data-status="RUNNING"`, "www-data", "hello"} {
		if !strings.Contains(dom, want) {
			t.Errorf("job page lacks %q:\n%s", want, dom)
		}
	}
	screenshot(t, page)

	// The leader advertises itself as a ServerSet member.
	zkAddr := c.component("zookeeper").Address
	conn, _, err := zk.Connect([]string{zkAddr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	kids, _, err := conn.Children("/aurora/scheduler")
	if err != nil {
		t.Fatal(err)
	}
	var member string
	for _, k := range kids {
		if strings.HasPrefix(k, "member_") {
			member = k
		}
	}
	if member == "" {
		t.Fatalf("no member_ under /aurora/scheduler: %v", kids)
	}
	data, _, _ := conn.Get("/aurora/scheduler/" + member)
	schedAddr := c.component("scheduler").Address
	port := schedAddr[strings.LastIndexByte(schedAddr, ':')+1:]
	jq(t, string(data), `.status == "ALIVE" and (.serviceEndpoint.port | tostring) == "`+port+`" and .additionalEndpoints.http.port == .serviceEndpoint.port`)

	// A second scheduler on the same ZooKeeper stands by: 503 on
	// /leaderhealth, and a 307 to the leader for everything else.
	standby := freeAddr(t)
	sb := exec.Command(bin(t), "scheduler", "--listen", standby, "--zk", zkAddr, "--data-dir", t.TempDir(), "--master", master)
	sb.Env = append(os.Environ(), "AURORABOX_DATA_DIR="+c.dir)
	if err := sb.Start(); err != nil {
		t.Fatal(err)
	}
	stopStandby := func() { sb.Process.Kill(); sb.Wait() }
	defer stopStandby()
	var code, location string
	waitFor(t, "the standby to answer", 20*time.Second, func() bool {
		out, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://"+standby+"/leaderhealth").Output()
		code = string(out)
		return err == nil && code == "503"
	})
	out, _ := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "http://"+standby+"/scheduler").Output()
	code, location, _ = strings.Cut(string(out), " ")
	if code != "307" || location != sched+"/scheduler" {
		t.Fatalf("standby /scheduler: %s %s, want 307 to %s/scheduler", code, location, sched)
	}
	// Gone before the leader is killed below, or it would take over (with
	// its own, empty store).
	stopStandby()

	// Kill instance 1, restart instance 0, start a failing batch job, and
	// kill -9 the scheduler while all that is under way.
	running := map[string]bool{}
	for _, tk := range tasksOf(t, sched, "hello") {
		running[tk.AssignedTask.TaskID] = true
	}
	jq(t, c.curlAuthed(sched+"/api/killTasks", `{"job": `+key+`, "instances": [1]}`), `.responseCode == "OK"`)
	jq(t, c.curlAuthed(sched+"/api/restartShards", `{"job": `+key+`, "shardIds": [0]}`), `.responseCode == "OK"`)
	jq(t, c.curlAuthed(sched+"/api/createJob", failingJob(2)), `.responseCode == "OK"`)
	pid := c.component("scheduler").PID
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "the scheduler restarted and healthy", 60*time.Second, func() bool {
		s := c.component("scheduler")
		return s.PID != pid && s.Health == "healthy"
	})
	waitFor(t, "instance 0 replaced, 1 killed, 2 untouched", 60*time.Second, func() bool {
		ts := tasksOf(t, sched, "hello")
		byInstance := map[int][]api.ScheduledTask{}
		for _, tk := range ts {
			if active(tk) {
				byInstance[tk.AssignedTask.InstanceID] = append(byInstance[tk.AssignedTask.InstanceID], tk)
			}
		}
		return len(byInstance[0]) == 1 && byInstance[0][0].Status == "RUNNING" && !running[byInstance[0][0].AssignedTask.TaskID] &&
			running[byInstance[0][0].AncestorID] && len(byInstance[1]) == 0 &&
			len(byInstance[2]) == 1 && byInstance[2][0].Status == "RUNNING" && running[byInstance[2][0].AssignedTask.TaskID]
	})
	waitFor(t, "the batch job at max_task_failures", 60*time.Second, func() bool {
		ts := tasksOf(t, sched, "failing")
		return count(ts, func(t api.ScheduledTask) bool { return t.Status == "FAILED" }) == 2 && count(ts, active) == 0
	})
	time.Sleep(time.Second)
	if ts := tasksOf(t, sched, "failing"); len(ts) != 2 {
		t.Fatalf("failing job: %d tasks after max_task_failures 2", len(ts))
	}
	if ts := tasksOf(t, sched, "hello"); len(ts) != 4 { // 3 first tasks + instance 0's replacement
		t.Fatalf("hello: %d tasks, want 4 (a task lost or duplicated)", len(ts))
	}
	state, _ = exec.Command("curl", "-fsS", master+"/master/state").Output()
	jq(t, string(state), `(.frameworks | length) == 1 and .frameworks[0].id == "`+fwID+`" and .frameworks[0].active and (.frameworks[0].tasks | length) == 2`)

	// Kill the job; everything ends KILLED.
	jq(t, c.curlAuthed(sched+"/api/killTasks", `{"job": `+key+`}`), `.responseCode == "OK"`)
	waitFor(t, "nothing active", 30*time.Second, func() bool { return count(tasksOf(t, sched, "hello"), active) == 0 })
}

// failingJob is a batch job whose only process exits 1.
func failingJob(maxFailures int) string {
	f := 0.0
	data, _ := json.Marshal(schema.Job{
		Name: "failing", Role: "www-data", Environment: "prod", Cluster: "devcluster",
		Task: schema.Task{Name: "failing", Processes: []schema.Process{{Name: "main", Cmdline: "sleep 0.5; exit 1", MinDuration: &f}}},
	})
	cpus, ram := 0.05, int64(8)
	key := api.JobKey{Role: "www-data", Environment: "prod", Name: "failing"}
	b, _ := json.Marshal(map[string]any{"description": api.JobConfiguration{
		Key: key, Owner: api.Identity{User: "www-data"}, InstanceCount: 1,
		TaskConfig: api.TaskConfig{Job: key, Owner: api.Identity{User: "www-data"}, MaxTaskFailures: maxFailures,
			Resources:      []api.Resource{{NumCpus: &cpus}, {RAMMb: &ram}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}},
	}})
	return string(b)
}

// freeAddr is a free 127.0.0.1 port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mustJQ runs a jq filter and returns its compact output.
func mustJQ(t *testing.T, input, filter string) string {
	t.Helper()
	cmd := exec.Command("jq", "-c", filter)
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("jq %s: %v", filter, err)
	}
	return strings.TrimSpace(string(out))
}

// screenshot saves a PNG of url under $TMPDIR/aurorabox-e2e-screenshots
// (kept after the test) and names it in the test output.
func screenshot(t *testing.T, url string) {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		return
	}
	dir := filepath.Join(os.TempDir(), "aurorabox-e2e-screenshots")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, t.Name()+".png")
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
		"--user-data-dir="+t.TempDir(), "--window-size=1280,900", "--screenshot="+file, url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot: %v %s", err, out)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", file, err)
	}
	t.Logf("screenshot of %s: %s (%d bytes)", url, file, fi.Size())
}

// constrainedJob is helloJob with a name, an instance count and constraints.
func constrainedJob(name string, instances int, constraints []api.Constraint) string {
	var m map[string]any
	json.Unmarshal([]byte(helloJob(instances)), &m)
	d := m["description"].(map[string]any)
	d["key"].(map[string]any)["name"] = name
	tc := d["taskConfig"].(map[string]any)
	tc["job"].(map[string]any)["name"] = name
	// The executor refuses a config whose name is not the job key's.
	ec := tc["executorConfig"].(map[string]any)
	var data map[string]any
	json.Unmarshal([]byte(ec["data"].(string)), &data)
	data["name"] = name
	b, _ := json.Marshal(data)
	ec["data"] = string(b)
	tc["constraints"] = constraints
	b, _ = json.Marshal(m)
	return string(b)
}

// TestConstraintsAcrossSimulatedHosts: on `up --agents 3`, limit:host:1
// spreads instances over the hosts (a 4th instance has nowhere to go) and a
// value constraint pins instances to a rack.
func TestConstraintsAcrossSimulatedHosts(t *testing.T) {
	c := newCluster(t)
	if r := c.run("up", "--detach", "--agents", "3"); r.code != 0 {
		t.Fatalf("up --agents 3: %d %s %s", r.code, r.stdout, r.stderr)
	}
	sched := "http://" + c.component("scheduler").Address
	hostsOf := func(name, status string) []string {
		out := curlJSON(t, sched+"/api/getTasksStatus", `{"query": {"role": "www-data", "environment": "prod", "jobName": "`+name+`", "statuses": ["`+status+`"]}}`)
		var r api.Response
		json.Unmarshal([]byte(out), &r)
		var hosts []string
		for _, tk := range r.Result.ScheduleStatusResult.Tasks {
			hosts = append(hosts, tk.AssignedTask.SlaveHost)
		}
		return hosts
	}
	spread := constrainedJob("spread", 4, []api.Constraint{{Name: "host", Constraint: api.TaskConstraint{Limit: &api.LimitConstraint{Limit: 1}}}})
	jq(t, c.curlAuthed(sched+"/api/createJob", spread), `.responseCode == "OK"`)
	waitFor(t, "3 spread instances RUNNING", 60*time.Second, func() bool { return len(hostsOf("spread", "RUNNING")) == 3 })
	hosts := map[string]bool{}
	for _, h := range hostsOf("spread", "RUNNING") {
		hosts[h] = true
	}
	if len(hosts) != 3 {
		t.Fatalf("limit:host:1 put instances on %v", hosts)
	}
	if p := hostsOf("spread", "PENDING"); len(p) != 1 {
		t.Fatalf("the 4th instance: %d PENDING", len(p))
	}
	pending, err := exec.Command("curl", "-fsS", sched+"/pendingtasks").Output()
	if err != nil {
		t.Fatal(err)
	}
	jq(t, string(pending), `any(.[]; .reason | contains("Limit not satisfied: host"))`)

	pinned := constrainedJob("pinned", 3, []api.Constraint{{Name: "rack", Constraint: api.TaskConstraint{Value: &api.ValueConstraint{Values: []string{"r2"}}}}})
	jq(t, c.curlAuthed(sched+"/api/createJob", pinned), `.responseCode == "OK"`)
	waitFor(t, "3 pinned instances RUNNING", 60*time.Second, func() bool { return len(hostsOf("pinned", "RUNNING")) == 3 })
	for _, h := range hostsOf("pinned", "RUNNING") {
		if h != "127.0.0.2" { // the only agent in rack r2
			t.Fatalf("rack:r2 instance on %s", h)
		}
	}
}
