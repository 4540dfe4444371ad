//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const whoConfig = `
who = Process(name = 'who', cmdline = 'id -un > whoami; sleep 600')
task = SequentialTask(processes = [who], resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))
jobs = [
  Service(cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'who', task = task),
  Service(cluster = 'devcluster', environment = 'test', role = 'aurorabox-nouser', name = 'nouser', task = task),
]
`

// TestTaskIdentityOnAppliance (issue 14, items 5 and 6) with real
// requests against `up` on a 0700 data dir: a www-data task runs as
// www-data (not root), a role with no user fails naming it, and the
// master's internal agent API and the agent's executor API refuse a
// caller without the secret or token.
func TestTaskIdentityOnAppliance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root appliance runs tasks as their roles' users")
	}
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "who.aurora")
	if err := os.WriteFile(cfg, []byte(whoConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.aurora("job", "create", "devcluster/www-data/test/who", cfg, "--wait-until", "RUNNING"); r.code != 0 {
		t.Fatalf("job create who: %d %s", r.code, r.stderr)
	}
	var whoami []byte
	waitFor(t, "the task's whoami", 30e9, func() bool {
		m, _ := filepath.Glob(filepath.Join(c.dir, "mesos", "slaves", "*", "frameworks", "*", "executors", "*", "runs", "latest", "sandbox", "whoami"))
		if len(m) == 1 {
			whoami, _ = os.ReadFile(m[0])
		}
		return len(whoami) > 0
	})
	if got := strings.TrimSpace(string(whoami)); got != "www-data" {
		t.Errorf("the www-data task ran as %q", got)
	}
	if r := c.aurora("job", "create", "devcluster/aurorabox-nouser/test/nouser", cfg); r.code != 0 {
		t.Fatalf("job create nouser: %d %s", r.code, r.stderr)
	}
	waitFor(t, "the nouser task failing, naming its user", 30e9, func() bool {
		return jqOK(c.statusJSON("devcluster/aurorabox-nouser/test/nouser"),
			`any(.[0].inactive[].taskEvents[]; .status == "FAILED" and .message == "Failed to initialize sandbox: user aurorabox-nouser does not exist")`)
	})
	for _, u := range []string{
		"http://" + c.component("master").Address + "/internal/v1/agent/update",
		"http://" + c.component("agent").Address + "/api/v1/executor",
	} {
		body := `{"type":"HEARTBEAT","framework_id":{"value":"f"},"executor_id":{"value":"e"}}`
		resp, err := http.Post(u, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without credentials: %s, want 401", u, resp.Status)
		}
	}
}
