package cli

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler/api"
)

// TestTaskQueriesNameTheJobAndOmitConfigs runs the commands that look at a
// job's tasks against a scheduler whose role also has a job with a large
// config, and checks that every task query names the whole job key and
// asks for the tasks without their configs: one job's config must not
// weigh on commands about another (issue 14, item 11).
func TestTaskQueriesNameTheJobAndOmitConfigs(t *testing.T) {
	big := task(0, "RUNNING")
	big.AssignedTask.TaskID = "www-data-prod-big-0-uuid"
	big.AssignedTask.Task.Job.Name = "big"
	big.AssignedTask.Task.ExecutorConfig = api.ExecutorConfig{Name: "AuroraExecutor", Data: strings.Repeat("x", 1<<20)}
	hello := []api.ScheduledTask{task(0, "RUNNING"), task(1, "RUNNING")}
	for _, args := range [][]string{
		{"job", "status", "devcluster/www-data/prod/hello"},
		{"job", "status", "devcluster/www-data/prod/hello", "--write-json"},
		{"job", "kill", "devcluster/www-data/prod/hello/0", "--strict"},
		{"job", "killall", "devcluster/www-data/prod/hello"},
		{"job", "restart", "devcluster/www-data/prod/hello", "--watch-secs", "0"},
	} {
		t.Run(strings.Join(args[:2], "_"), func(t *testing.T) {
			f := &fakeScheduler{tasks: append([]api.ScheduledTask{big}, hello...), restarts: map[int]int{}, failRestarts: map[int]int{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			if code, _, stderr := run(t, srv.URL, false, args...); code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, stderr)
			}
			queries := 0
			for _, c := range f.calls {
				method, body, _ := strings.Cut(c, " ")
				if !strings.HasPrefix(method, "getTasks") {
					continue
				}
				queries++
				if method != "getTasksWithoutConfigs" {
					t.Errorf("%v sent %s, want getTasksWithoutConfigs", args, method)
				}
				var p struct{ Query api.TaskQuery }
				if err := json.Unmarshal([]byte(body), &p); err != nil {
					t.Fatalf("%s: %v", c, err)
				}
				q := p.Query
				if q.Role != "www-data" || q.Environment != "prod" || q.JobName != "hello" {
					t.Errorf("%v queried %+v, want the job key www-data/prod/hello", args, q)
				}
			}
			if queries == 0 {
				t.Errorf("%v made no task query", args)
			}
		})
	}
}
