package scheduler_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	"github.com/aurorabox/aurorabox/appliance/mesos/mesostest"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

// TestRevocableTier: tasks of the revocable tier run on the agent's
// revocable cpus only (the third of three does not fit its one revocable
// cpu, though four ordinary cpus are free), and their TaskInfo's cpus are
// revocable; a task of another tier never gets revocable cpus.
func TestRevocableTier(t *testing.T) {
	over, err := agent.ParseOversubscribed("cpus:1")
	if err != nil {
		t.Fatal(err)
	}
	e := &apiEnv{env: &env{t: t, dataDir: t.TempDir(),
		cluster: mesostest.StartAgent(t, func(c *agent.Config) { c.Oversubscribed = over })}}
	e.restart()
	t.Cleanup(func() { e.stop() })

	rev := jobConfig("rev", 3, true, 1, "sleep 600")
	rev.TaskConfig.Tier = "revocable"
	rev.TaskConfig.Resources = []api.Resource{{NumCpus: ptr(0.4)}, {RAMMb: ptr(int64(16))}, {DiskMb: ptr(int64(16))}}
	e.mustOK("createJob", map[string]any{"description": rev})
	e.mustOK("createJob", map[string]any{"description": jobConfig("plain", 1, true, 1, "sleep 600")})
	e.await("plain", "1 RUNNING", running(1))
	ts := e.await("rev", "2 RUNNING, 1 PENDING", func(ts map[string][]api.ScheduledTask) bool {
		return len(ts["RUNNING"]) == 2 && len(ts["PENDING"]) == 1
	})
	var reasons []api.PendingReason
	e.eventually("a pending reason", func() bool {
		reasons = e.mustOK("getPendingReason", map[string]any{"query": api.TaskQuery{Role: "www-data", JobName: "rev"}}).Result.GetPendingReasonResult.Reasons
		return len(reasons) == 1 && reasons[0].Reason != ""
	})
	if reasons[0].TaskID != ts["PENDING"][0].AssignedTask.TaskID || reasons[0].Reason != "Insufficient: CPU" {
		t.Errorf("pending reasons = %+v, want Insufficient: CPU for the third", reasons)
	}

	var state struct {
		Frameworks []struct {
			Tasks []struct {
				Name      string             `json:"name"`
				Resources map[string]any     `json:"resources"`
				Revocable map[string]float64 `json:"revocable_resources"`
			} `json:"tasks"`
		} `json:"frameworks"`
	}
	resp, err := http.Get(e.cluster.MasterURL + "/master/state")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&state)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("master state: %v", err)
	}
	seen := map[string]int{}
	for _, fw := range state.Frameworks {
		for _, tk := range fw.Tasks {
			job := tk.Name[strings.LastIndex(tk.Name, "/")+1:]
			seen[job]++
			want := 0.0
			if job == "rev" {
				want = 0.4
			}
			if got := tk.Revocable["cpus"]; got != want {
				t.Errorf("task %s: revocable cpus %g, want %g (resources %v)", tk.Name, got, want, tk.Resources)
			}
		}
	}
	if seen["rev"] != 2 || seen["plain"] != 1 {
		t.Errorf("tasks in the master's state by job: %v, want rev 2 and plain 1", seen)
	}
}
