package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/scheduler"
)

// TestSchedulerAuthenticatesToMaster: the scheduler's framework runs as
// root (its executor switches to each role's user), so a master without
// root_submissions (mesostest's) accepts it only authenticated: with its
// credential (Aurora's -framework_authentication_file, announced as
// -framework_announce_principal does) the scheduler registers and a job
// runs.
func TestSchedulerAuthenticatesToMaster(t *testing.T) {
	e := startAPI(t, "", nil, func(c *scheduler.Config) { c.AnnouncePrincipal = true })
	e.mustOK("createJob", map[string]any{"description": jobConfig("authed", 1, true, 1, "sleep 600")})
	e.await("authed", "1 RUNNING", allRunning(1))
}

// TestReadFrameworkAuthenticationFile: Aurora's properties file, its
// required keys, and its mode.
func TestReadFrameworkAuthenticationFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.properties")
	os.WriteFile(path, []byte("# comment\n! another\naurora_authentication_principal = aurora\naurora_authentication_secret: s3cr\\\n   et\n"), 0o600)
	c, err := scheduler.ReadFrameworkAuthenticationFile(path)
	if err != nil || c.Principal != "aurora" || c.Secret != "s3cret" {
		t.Fatalf("%+v %v, want aurora s3cret", c, err)
	}
	os.Chmod(path, 0o644)
	if _, err := scheduler.ReadFrameworkAuthenticationFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a 0644 file: %v, want an error naming it", err)
	}
	for key, body := range map[string]string{
		scheduler.SecretKey:    "aurora_authentication_principal=aurora\n",
		scheduler.PrincipalKey: "aurora_authentication_secret=x\n",
	} {
		p := filepath.Join(dir, key)
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := scheduler.ReadFrameworkAuthenticationFile(p); err == nil || !strings.Contains(err.Error(), "missing the key: "+key) {
			t.Errorf("without %s: %v", key, err)
		}
	}
}
