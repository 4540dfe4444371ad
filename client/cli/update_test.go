package cli

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/client"
	"github.com/aurorabox/aurorabox/scheduler/api"
)

func fakeUpdate(id, status string, created int64) api.JobUpdateDetails {
	k := api.JobUpdateKey{Job: api.JobKey{Role: "www-data", Environment: "prod", Name: "hello"}, ID: id}
	return api.JobUpdateDetails{
		Update: api.JobUpdate{Summary: api.JobUpdateSummary{Key: k, User: "vagrant",
			State:    api.JobUpdateState{Status: status, CreatedTimestampMs: created, LastModifiedTimestampMs: created + 61_000},
			Metadata: []api.Metadata{{Key: "org.apache.aurora.client.update_id", Value: id}}}},
		UpdateEvents: []api.JobUpdateEvent{{Status: "ROLLING_FORWARD", TimestampMs: created, User: "vagrant", Message: "go"},
			{Status: status, TimestampMs: created + 61_000}},
		InstanceEvents: []api.JobInstanceUpdateEvent{{InstanceID: 0, TimestampMs: created + 1000, Action: "INSTANCE_UPDATING"},
			{InstanceID: 0, TimestampMs: created + 31_000, Action: "INSTANCE_UPDATED"}},
	}
}

func TestUpdateCommands(t *testing.T) {
	old := time.Local
	time.Local = time.UTC // update info prints local times, as Python's ctime
	defer func() { time.Local = old }()
	cfg := writeConfig(t, "hello.aurora", helloConfig)
	const t0 = 1795600000000
	for _, tc := range []struct {
		name    string
		updates []api.JobUpdateDetails
		end     string
		args    []string
		code    int
		calls   []string
	}{
		{"update_start", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0)}, "", []string{"update", "start", "devcluster/www-data/prod/hello/0-1", cfg}, 0,
			[]string{"getTierConfigs", "startJobUpdate"}},
		{"update_start_wait", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0)}, "ROLLED_FORWARD", []string{"update", "start", "devcluster/www-data/prod/hello", cfg, "--wait"}, 0,
			[]string{"getTierConfigs", "startJobUpdate", "getJobUpdateDetails", "getJobUpdateDetails"}},
		{"update_list", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0), fakeUpdate("c3d4", "ROLLED_BACK", t0-86_400_000)}, "", []string{"update", "list", "devcluster/www-data"}, 0,
			[]string{"getJobUpdateSummaries"}},
		{"update_list_active", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0), fakeUpdate("c3d4", "ROLLED_BACK", t0-86_400_000)}, "", []string{"update", "list", "devcluster/www-data/prod/hello", "--status", "active"}, 0,
			[]string{"getJobUpdateSummaries"}},
		{"update_list_json", []api.JobUpdateDetails{fakeUpdate("c3d4", "ROLLED_BACK", t0)}, "", []string{"update", "list", "devcluster", "--write-json"}, 0,
			[]string{"getJobUpdateSummaries"}},
		{"update_info", []api.JobUpdateDetails{fakeUpdate("c3d4", "ROLLED_FORWARD", t0)}, "", []string{"update", "info", "devcluster/www-data/prod/hello", "c3d4"}, 0,
			[]string{"getJobUpdateDetails"}},
		{"update_info_json", []api.JobUpdateDetails{fakeUpdate("c3d4", "ROLLED_FORWARD", t0)}, "", []string{"update", "info", "devcluster/www-data/prod/hello", "c3d4", "--write-json"}, 0,
			[]string{"getJobUpdateDetails"}},
		{"update_pause", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0)}, "", []string{"update", "pause", "devcluster/www-data/prod/hello", "-m", "hello"}, 0,
			[]string{"getJobUpdateSummaries", "pauseJobUpdate"}},
		{"update_pause_none", []api.JobUpdateDetails{fakeUpdate("c3d4", "ROLLED_FORWARD", t0)}, "", []string{"update", "pause", "devcluster/www-data/prod/hello"}, client.ExitInvalidParameter,
			[]string{"getJobUpdateSummaries"}},
		{"update_wait_rolled_back", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0)}, "ROLLED_BACK", []string{"update", "wait", "devcluster/www-data/prod/hello", "a1b2"}, client.ExitCommandFailure,
			[]string{"getJobUpdateDetails", "getJobUpdateDetails"}},
		{"update_wait_aborted", []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", t0)}, "ABORTED", []string{"update", "wait", "devcluster/www-data/prod/hello", "a1b2"}, client.ExitUnknownError,
			[]string{"getJobUpdateDetails", "getJobUpdateDetails"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeScheduler{updates: tc.updates, updateEnd: tc.end}
			srv := httptest.NewServer(f)
			defer srv.Close()
			code, out, stderr := run(t, srv.URL, false, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, stderr)
			}
			golden(t, tc.name+".txt", strings.ReplaceAll(out+stderr, srv.URL, "http://SCHEDULER"))
			var got []string
			for _, c := range f.calls {
				m, _, _ := strings.Cut(c, " ")
				got = append(got, m)
			}
			if strings.Join(got, ",") != strings.Join(tc.calls, ",") {
				t.Errorf("RPCs %v, want %v", got, tc.calls)
			}
		})
	}
}

// update start sends the config's update_config as JobUpdateSettings, the
// instance spec as ranges, and the client's update id.
func TestUpdateStartRequest(t *testing.T) {
	cfg := writeConfig(t, "hello.aurora", strings.Replace(helloConfig, "instances = 2,", `instances = 6,
    update_config = UpdateConfig(watch_secs = 7, max_per_shard_failures = 1, max_total_failures = 2,
      rollback_on_failure = False, update_strategy = VariableBatchUpdateStrategy(batch_sizes = [1, 2], autopause_after_batch = True)),`, 1))
	f := &fakeScheduler{updates: []api.JobUpdateDetails{fakeUpdate("a1b2", "ROLLING_FORWARD", 0)}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	if code, _, stderr := run(t, srv.URL, false, "update", "start", "devcluster/www-data/prod/hello/0-2,4", cfg); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var p struct {
		Request api.JobUpdateRequest
		Message string
	}
	for _, c := range f.calls {
		if m, body, _ := strings.Cut(c, " "); m == "startJobUpdate" {
			json.Unmarshal([]byte(body), &p)
		}
	}
	s := p.Request.Settings
	if p.Request.InstanceCount != 6 || s.UpdateGroupSize != 1 || s.MinWaitInInstanceRunningMs != 7000 || s.MaxPerInstanceFailures != 1 ||
		s.MaxFailedInstances != 2 || s.RollbackOnFailure || s.UpdateStrategy == nil || s.UpdateStrategy.VarBatchStrategy == nil ||
		len(s.UpdateStrategy.VarBatchStrategy.GroupSizes) != 2 || !s.UpdateStrategy.VarBatchStrategy.AutopauseAfterBatch {
		t.Fatalf("request %+v settings %+v", p.Request, s)
	}
	if len(s.UpdateOnlyTheseInstances) != 2 || s.UpdateOnlyTheseInstances[0] != (api.Range{First: 0, Last: 2}) || s.UpdateOnlyTheseInstances[1] != (api.Range{First: 4, Last: 4}) {
		t.Fatalf("instances %+v", s.UpdateOnlyTheseInstances)
	}
	if len(p.Request.Metadata) != 1 || p.Request.Metadata[0].Key != "org.apache.aurora.client.update_id" || len(p.Request.Metadata[0].Value) != 36 {
		t.Fatalf("metadata %+v", p.Request.Metadata)
	}
}
