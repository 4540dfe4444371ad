//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/shiro"
)

// BenchmarkColdUp measures `aurorabox up --detach` on a fresh data dir until
// every component is ready, as a user sees it. It also reports the idle RSS
// of the supervisor and of each component, a second after start-up.
func BenchmarkColdUp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := newCluster(b)
		b.StartTimer()
		c.up()
		b.StopTimer()
		if i == b.N-1 {
			time.Sleep(time.Second)
			st := c.status()
			b.ReportMetric(rssKB(b, st.Supervisor.PID), "supervisor-rss-KB")
			for _, comp := range st.Components {
				b.ReportMetric(rssKB(b, comp.PID), comp.Name+"-rss-KB")
			}
		}
		c.run("down")
		b.StartTimer()
	}
}

func rssKB(b *testing.B, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	b.Fatalf("no VmRSS for %d", pid)
	return 0
}

// BenchmarkExecBaseline is the floor BenchmarkColdUp is compared with: one
// exec of the binary that does nothing (`aurorabox version`).
func BenchmarkExecBaseline(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if r := run(b, nil, "version"); r.code != 0 {
			b.Fatal(r.stderr)
		}
	}
}

// BenchmarkCreateToRunning measures createJob → every instance RUNNING on
// the appliance, for 1, 10 and 100 instances of a trivial process, through
// the real scheduler, master, agent and executor. Each iteration creates a
// job, waits, then kills it (outside the timer). The dev-profile target for
// one instance is under 0.5 s.
func BenchmarkCreateToRunning(b *testing.B) {
	c := newCluster(b)
	c.up()
	sched := "http://" + c.component("scheduler").Address
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var took []time.Duration
			for i := 0; i < b.N; i++ {
				name := "bench" + strconv.Itoa(n) + "x" + strconv.Itoa(i)
				start := time.Now()
				if r := c.postJSON(sched+"/api/createJob", benchJob(name, n)); r.ResponseCode != api.OK {
					b.Fatalf("createJob: %+v", r)
				}
				q := map[string]any{"query": api.TaskQuery{Role: "www-data", Environment: "prod", JobName: name, Statuses: []string{"RUNNING"}}}
				deadline := time.Now().Add(5 * time.Minute)
				for len(c.postJSON(sched+"/api/getTasksStatus", q).Result.ScheduleStatusResult.Tasks) < n {
					if time.Now().After(deadline) {
						b.Fatalf("%d instances not RUNNING after 5 minutes", n)
					}
					time.Sleep(10 * time.Millisecond)
				}
				took = append(took, time.Since(start))
				b.StopTimer()
				c.postJSON(sched+"/api/killTasks", map[string]any{"job": api.JobKey{Role: "www-data", Environment: "prod", Name: name}})
				q["query"] = api.TaskQuery{Role: "www-data", Environment: "prod", JobName: name, Statuses: []string{"KILLING", "RUNNING", "ASSIGNED", "STARTING"}}
				for len(c.postJSON(sched+"/api/getTasksStatus", q).Result.ScheduleStatusResult.Tasks) > 0 {
					time.Sleep(20 * time.Millisecond)
				}
				b.StartTimer()
			}
			sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
			b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "median-ms")
		})
	}
}

func benchJob(name string, instances int) map[string]any {
	f := 0.0
	data, _ := json.Marshal(schema.Job{
		Name: name, Role: "www-data", Environment: "prod", Cluster: "devcluster", Service: true,
		Task: schema.Task{Name: name, Processes: []schema.Process{{Name: "main", Cmdline: "sleep 600", MinDuration: &f}}},
	})
	cpus, ram := 0.01, int64(8)
	key := api.JobKey{Role: "www-data", Environment: "prod", Name: name}
	return map[string]any{"description": api.JobConfiguration{
		Key: key, Owner: api.Identity{User: "www-data"}, InstanceCount: instances,
		TaskConfig: api.TaskConfig{Job: key, Owner: api.Identity{User: "www-data"}, IsService: true, MaxTaskFailures: 1,
			Resources:      []api.Resource{{NumCpus: &cpus}, {RAMMb: &ram}},
			ExecutorConfig: api.ExecutorConfig{Name: "AuroraExecutor", Data: string(data)}},
	}}
}

// postJSON calls the scheduler API with the appliance's credential.
func (c *cluster) postJSON(url string, body any) api.Response {
	c.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	users, err := shiro.ReadFile(filepath.Join(c.dir, "scheduler", "shiro.ini"))
	if err != nil {
		c.t.Fatal(err)
	}
	req.SetBasicAuth(users[0].Name, users[0].Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		c.t.Fatal(err)
	}
	return r
}
