//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// curlStatus posts body to url without credentials and returns the HTTP
// status and the answer.
func curlStatus(t *testing.T, url, body string) (string, string) {
	t.Helper()
	out, err := exec.Command("curl", "-sS", "-w", "\n%{http_code}", "-H", "Content-Type: application/json", "-d", body, url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	s := string(out)
	i := strings.LastIndexByte(s, '\n')
	return s[i+1:], s[:i]
}

// rootJob is helloJob for role root.
func rootJob() string { return strings.ReplaceAll(helloJob(1), "www-data", "root") }

// TestSchedulerAuthOnAppliance: by default `up` protects the scheduler:
// an unauthenticated createJob gets 401 and AUTH_FAILED while read-only
// calls stay open; the credential is a 0600 file named in status; the
// aurora client finds it on its own, and without it exits 30 (Aurora's
// test_basic_auth_unauthenticated); a job for role root is refused with
// INVALID_REQUEST.
func TestSchedulerAuthOnAppliance(t *testing.T) {
	c := newCluster(t)
	c.up()
	sched := "http://" + c.component("scheduler").Address
	cred := filepath.Join(c.dir, "scheduler", "shiro.ini")

	code, answer := curlStatus(t, sched+"/api/createJob", helloJob(1))
	if code != "401" {
		t.Fatalf("unauthenticated createJob: HTTP %s %s", code, answer)
	}
	jq(t, answer, `.responseCode == "AUTH_FAILED"`)
	code, answer = curlStatus(t, sched+"/api/getJobs", `{"ownerRole": ""}`)
	if code != "200" {
		t.Fatalf("unauthenticated getJobs: HTTP %s %s", code, answer)
	}
	jq(t, answer, `.responseCode == "OK"`)

	st := c.run("status", "--json")
	jq(t, st.stdout, `.auth == "basic" and .credentials == "`+cred+`" and (.warnings | not) and (.allow_root_tasks | not)`)
	if fi, err := os.Stat(cred); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential %s: %v %v", cred, fi, err)
	}
	cj, _ := os.ReadFile(filepath.Join(c.dir, "clusters.json"))
	jq(t, string(cj), `.[0].basic_auth_file == "`+cred+`"`)

	// The client authenticates by itself (HOME has no .netrc).
	cfg := filepath.Join(c.dir, "hello_world.aurora")
	os.WriteFile(cfg, []byte(helloWorld), 0o644)
	key := "devcluster/www-data/test/hello"
	if r := c.aurora("job", "create", key, cfg); r.code != 0 {
		t.Fatalf("job create: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := c.aurora("job", "killall", key); r.code != 0 {
		t.Fatalf("job killall: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Without the credential: exit 30, and the message says what to do.
	var entries []map[string]any
	json.Unmarshal(cj, &entries)
	delete(entries[0], "basic_auth_file")
	noCred := filepath.Join(c.dir, "nocred")
	os.MkdirAll(noCred, 0o700)
	b, _ := json.Marshal(entries)
	os.WriteFile(filepath.Join(noCred, "clusters.json"), b, 0o644)
	anon := &cluster{t, noCred}
	if r := anon.aurora("job", "create", key, cfg); r.code != 30 || !strings.Contains(r.stderr, "Authentication failed for createJob") || !strings.Contains(r.stderr, "~/.netrc") {
		t.Fatalf("job create without credentials: exit %d %s", r.code, r.stderr)
	}
	if r := anon.aurora("job", "list", "devcluster/www-data"); r.code != 0 {
		t.Fatalf("job list without credentials: exit %d %s", r.code, r.stderr)
	}

	// Role root is refused, with the way out.
	out := c.curlAuthed(sched+"/api/createJob", rootJob())
	jq(t, out, `.responseCode == "INVALID_REQUEST" and (.details[0].message | contains("Role root would run its tasks as root") and contains("--allow-root-tasks"))`)
}

// TestAuthNoneOnAppliance: `up --auth none --allow-root-tasks` opens the
// API and lets role root in, and status warns about both.
func TestAuthNoneOnAppliance(t *testing.T) {
	c := newCluster(t)
	if r := c.run("up", "--detach", "--auth", "none", "--allow-root-tasks"); r.code != 0 {
		t.Fatalf("up --auth none: %d %s %s", r.code, r.stdout, r.stderr)
	}
	sched := "http://" + c.component("scheduler").Address
	st := c.run("status", "--json")
	jq(t, st.stdout, `.auth == "none" and (.credentials | not) and .allow_root_tasks and (.warnings | length == 2) and (.warnings[0] | contains("authentication is off"))`)
	if h := c.run("status"); !strings.Contains(h.stdout, "WARNING: scheduler API authentication is off (auth none): anyone who can reach "+sched) {
		t.Fatalf("status text:\n%s", h.stdout)
	}
	if log, _ := os.ReadFile(filepath.Join(c.dir, "logs", "aurorabox.log")); !strings.Contains(string(log), "scheduler API authentication is off") {
		t.Fatalf("up's log lacks the warning:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "scheduler", "shiro.ini")); !os.IsNotExist(err) {
		t.Fatalf("credential with --auth none: %v", err)
	}
	code, answer := curlStatus(t, sched+"/api/populateJobConfig", rootJob())
	if code != "200" {
		t.Fatalf("populateJobConfig: HTTP %s %s", code, answer)
	}
	jq(t, answer, `.responseCode == "OK"`)
	code, answer = curlStatus(t, sched+"/api/createJob", helloJob(1))
	if code != "200" {
		t.Fatalf("createJob without credentials under --auth none: HTTP %s %s", code, answer)
	}
	jq(t, answer, `.responseCode == "OK"`)
	jq(t, curlJSON(t, sched+"/api/killTasks", `{"job": {"role": "www-data", "environment": "prod", "name": "hello"}}`), `.responseCode == "OK"`)
}
