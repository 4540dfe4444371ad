package agent_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
)

// TestVersion: the agent's /version, like the master's, reports the Mesos
// API release aurorabox implements as version and aurorabox's own build in
// the build fields; /state carries the same fields, as Mesos' agent does.
func TestVersion(t *testing.T) {
	c := startMasterAndAgent(t, func(cfg *agent.Config) { cfg.BuildVersion = "v9.9.9-test" })
	resp, err := http.Get(c.agentURL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ver map[string]any
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/version: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ver); err != nil {
		t.Fatal(err)
	}
	st := c.state()
	for name, doc := range map[string]map[string]any{"/version": ver, "/state": st} {
		if doc["version"] != "1.1.0" || doc["git_tag"] != "v9.9.9-test" || doc["build_user"] != "aurorabox" {
			t.Errorf("%s: version %v, git_tag %v, build_user %v; want 1.1.0, v9.9.9-test, aurorabox", name, doc["version"], doc["git_tag"], doc["build_user"])
		}
		for _, k := range []string{"git_sha", "build_time", "build_date"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s lacks %s", name, k)
			}
		}
	}
}
