//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helloWorld is the Aurora tutorial's hello_world.aurora, for our cluster.
const helloWorld = `
hello = Process(
  name = 'hello',
  cmdline = """
    while true; do
      echo hello world
      sleep 10
    done
  """)

task = SequentialTask(
  processes = [hello],
  resources = Resources(cpu = 0.1, ram = 16*MB, disk = 16*MB))

jobs = [Service(
  cluster = 'devcluster', environment = 'test', role = 'www-data', name = 'hello', task = task)]
`

// aurora runs the client as `aurora` (a symlink to the binary, as make
// install makes), with the appliance's clusters.json.
func (c *cluster) aurora(args ...string) result {
	c.t.Helper()
	dir := filepath.Join(c.dir, "clientbin")
	os.MkdirAll(dir, 0o755)
	link := filepath.Join(dir, "aurora")
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(bin(c.t), link); err != nil {
			c.t.Fatal(err)
		}
	}
	cmd := exec.Command(link, args...)
	cmd.Env = append(os.Environ(), "AURORA_CONFIG_ROOT="+c.dir, "HOME="+c.dir)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestAuroraClient is the scenario: create the tutorial job and
// wait until it runs, read its status as scripts do, look at its output
// through task ssh, and kill it.
func TestAuroraClient(t *testing.T) {
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "hello_world.aurora")
	os.WriteFile(cfg, []byte(helloWorld), 0o644)
	key := "devcluster/www-data/test/hello"

	r := c.aurora("job", "create", key, cfg, "--wait-until", "RUNNING")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Job create succeeded: job url=http://") || !strings.Contains(r.stdout, "/scheduler/www-data/test/hello") {
		t.Fatalf("job create: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = c.aurora("job", "status", key, "--write-json")
	if r.code != 0 {
		t.Fatalf("job status: %d %s", r.code, r.stderr)
	}
	if got := mustJQ(t, r.stdout, `.[0].active[0].status`); got != `"RUNNING"` {
		t.Fatalf("status %s", got)
	}
	var out string
	waitFor(t, "hello world in the process's stdout", 30e9, func() bool {
		r = c.aurora("task", "ssh", key+"/0", "--command=tail -1 .logs/hello/0/stdout")
		out = r.stdout
		return r.code == 0 && strings.TrimSpace(out) == "hello world"
	})
	if r := c.aurora("config", "list", cfg); r.code != 0 || strings.TrimSpace(r.stdout) != "jobs=[devcluster/www-data/test/hello]" {
		t.Fatalf("config list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := c.aurora("job", "list", "devcluster/www-data"); r.code != 0 || strings.TrimSpace(r.stdout) != key {
		t.Fatalf("job list: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := c.aurora("job", "killall", key); r.code != 0 || r.stdout != "Job killall succeeded\n" {
		t.Fatalf("killall: %d %q %s", r.code, r.stdout, r.stderr)
	}
	// Errors a user meets: a config typo names the line; a bad key says which part.
	os.WriteFile(cfg, []byte(strings.Replace(helloWorld, "cmdline =", "cmdlin =", 1)), 0o644)
	if r := c.aurora("job", "create", key, cfg); r.code != 3 || !strings.Contains(r.stderr, "hello_world.aurora:") {
		t.Fatalf("typo: %d %s", r.code, r.stderr)
	}
	if r := c.aurora("job", "create", "devcluster/www-data/te st/hello", cfg); r.code != 6 || !strings.Contains(r.stderr, "environment") {
		t.Fatalf("bad key: %d %s", r.code, r.stderr)
	}
}

// An unreachable scheduler exits 7 and names the address it tried.
func TestAuroraClientUnreachable(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "clusters.json"), []byte(`[{"name": "gone", "scheduler_uri": "http://127.0.0.1:9"}]`), 0o644)
	c := &cluster{t, dir}
	r := c.aurora("job", "list", "gone")
	if r.code != 7 || !strings.Contains(r.stderr, "http://127.0.0.1:9") {
		t.Fatalf("unreachable: %d %s", r.code, r.stderr)
	}
}
