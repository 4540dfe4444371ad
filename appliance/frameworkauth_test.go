package appliance

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/mesos/master"
	"github.com/aurorabox/aurorabox/scheduler"
)

// TestFrameworkCredential: up makes the scheduler's framework credential on
// first start (a 0600 properties file with a random secret, kept across
// restarts) and the master's 0600 credentials file with the same principal
// and secret; the master gets --credentials and the scheduler
// --framework-authentication-file (files, never the secret), and
// allow_root_tasks also gives the master --root-submissions.
func TestFrameworkCredential(t *testing.T) {
	cfg := testConfig(t)
	r := startUp(t, cfg)
	props, creds := FrameworkAuthPath(cfg), FrameworkCredentialsPath(cfg)
	for _, p := range []string{props, creds} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want 0600", p, fi, err)
		}
	}
	c, err := scheduler.ReadFrameworkAuthenticationFile(props)
	if err != nil || c.Principal != FrameworkPrincipal || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(c.Secret) {
		t.Fatalf("scheduler's credential %+v %v", c, err)
	}
	m, err := master.ReadCredentials(creds)
	if err != nil || len(m) != 1 || m[c.Principal] != c.Secret {
		t.Fatalf("master's credentials %v %v, want the scheduler's", m, err)
	}
	r.cancel()
	r.done <- <-r.done
	startUp(t, cfg)
	if again, _ := scheduler.ReadFrameworkAuthenticationFile(props); again != c {
		t.Error("the framework credential changed across restarts")
	}

	args := func(name string) []string {
		for _, comp := range Components(cfg, "/bin/aurorabox") {
			if comp.Name == name {
				return comp.Args
			}
		}
		t.Fatalf("no component %s", name)
		return nil
	}
	has := func(list []string, flag, value string) bool {
		i := slices.Index(list, flag)
		return i >= 0 && (value == "" || i+1 < len(list) && list[i+1] == value)
	}
	if m := args("master"); !has(m, "--credentials", creds) || has(m, "--root-submissions", "") {
		t.Errorf("master args %v, want --credentials %s and no --root-submissions", m, creds)
	}
	if s := args("scheduler"); !has(s, "--framework-authentication-file", props) {
		t.Errorf("scheduler args %v, want --framework-authentication-file %s", s, props)
	}
	for _, comp := range Components(cfg, "/bin/aurorabox") {
		if slices.Contains(comp.Args, c.Secret) {
			t.Errorf("%s gets the secret on its command line", comp.Name)
		}
	}
	cfg.AllowRootTasks = true
	if m := args("master"); !has(m, "--root-submissions", "") {
		t.Errorf("with allow_root_tasks the master args %v lack --root-submissions", m)
	}
}
