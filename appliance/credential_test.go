package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/scheduler/shiro"
)

// schedulerArgs are the scheduler's command line as Components builds it.
func schedulerArgs(t *testing.T, cfg *config.Config) []string {
	t.Helper()
	for _, c := range Components(cfg, "/bin/aurorabox") {
		if c.Name == "scheduler" {
			return c.Args
		}
	}
	t.Fatal("no scheduler component")
	return nil
}

func readClusters(t *testing.T, cfg *config.Config) map[string]any {
	t.Helper()
	var cs []map[string]any
	b, _ := os.ReadFile(cfg.Path("clusters.json"))
	if err := json.Unmarshal(b, &cs); err != nil || len(cs) != 1 {
		t.Fatalf("clusters.json %s: %v", b, err)
	}
	return cs[0]
}

// up generates a private credential on first start, keeps it across
// restarts, passes it to the scheduler and names it (not the password)
// in clusters.json and status.
func TestUpGeneratesCredential(t *testing.T) {
	cfg := testConfig(t)
	path := CredentialPath(cfg)
	if path != filepath.Join(cfg.DataDir, "scheduler", "shiro.ini") {
		t.Fatalf("credential path %s", path)
	}
	r := startUp(t, cfg)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential %s: %v %v", path, fi, err)
	}
	first, _ := os.ReadFile(path)
	users, err := shiro.Parse(path, first)
	if err != nil || len(users) != 1 || users[0].Name != CredentialUser || len(users[0].Password) < 43 {
		t.Fatalf("credential %q: %+v %v", first, users, err)
	}
	if args := strings.Join(schedulerArgs(t, cfg), " "); !strings.Contains(args, "--shiro-ini "+path) || strings.Contains(args, "--allow-root-tasks") {
		t.Fatalf("scheduler args: %s", args)
	}
	c := readClusters(t, cfg)
	if c["basic_auth_file"] != path || c["auth_mechanism"] != "UNAUTHENTICATED" {
		t.Fatalf("clusters.json entry %v", c)
	}
	if b, _ := os.ReadFile(cfg.Path("clusters.json")); bytes.Contains(b, []byte(users[0].Password)) {
		t.Fatal("clusters.json holds the password")
	}
	st, err := GetStatus(context.Background(), cfg)
	if err != nil || st.Auth != "basic" || st.Credentials != path || len(st.Warnings) != 0 || st.AllowRootTasks {
		t.Fatalf("status %+v %v", st, err)
	}
	var out bytes.Buffer
	PrintStatus(&out, st)
	if !strings.Contains(out.String(), "api auth: basic (credentials "+path+")") || strings.Contains(out.String(), "WARNING") {
		t.Fatalf("status text:\n%s", out.String())
	}

	// A restart keeps the password.
	r.cancel()
	<-r.done
	r.done <- nil
	startUp(t, cfg)
	if again, _ := os.ReadFile(path); !bytes.Equal(again, first) {
		t.Fatalf("credential changed across restarts:\n%s\n%s", first, again)
	}
	// Two data dirs get different passwords.
	other := testConfig(t)
	if _, err := ensureCredential(CredentialPath(other)); err != nil {
		t.Fatal(err)
	}
	if o, _ := os.ReadFile(CredentialPath(other)); bytes.Equal(o, first) {
		t.Fatal("two credentials are the same")
	}
}

// With auth none there is no credential, the scheduler gets none, and
// status and up warn; allow_root_tasks reaches the scheduler and warns, and
// so does timing_profile (issue 15).
func TestUpAuthNone(t *testing.T) {
	cfg := testConfig(t)
	cfg.Auth, cfg.AllowRootTasks = config.AuthNone, true
	var summary bytes.Buffer
	ready := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Up(ctx, cfg, UpOptions{Components: fakeComponents, Out: &summary, Ready: func(err error) { ready <- err }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(CredentialPath(cfg)); !os.IsNotExist(err) {
		t.Fatalf("credential with auth none: %v", err)
	}
	args := strings.Join(schedulerArgs(t, cfg), " ")
	if strings.Contains(args, "--shiro-ini") || !strings.Contains(args, "--allow-root-tasks") {
		t.Fatalf("scheduler args: %s", args)
	}
	cfg.TimingProfile = config.TimingAurora
	if args := strings.Join(schedulerArgs(t, cfg), " "); !strings.Contains(args, "--timing-profile aurora") {
		t.Fatalf("scheduler args with timing_profile aurora: %s", args)
	}
	if c := readClusters(t, cfg); c["basic_auth_file"] != nil {
		t.Fatalf("clusters.json entry %v", c)
	}
	st, err := GetStatus(context.Background(), cfg)
	if err != nil || st.Auth != "none" || st.Credentials != "" || !st.AllowRootTasks || len(st.Warnings) != 2 ||
		!strings.Contains(st.Warnings[0], "scheduler API authentication is off (auth none)") || !strings.Contains(st.Warnings[1], "tasks may run as root") {
		t.Fatalf("status %+v %v", st, err)
	}
	b, _ := json.Marshal(st)
	if !bytes.Contains(b, []byte(`"auth":"none"`)) || !bytes.Contains(b, []byte(`"warnings":["scheduler API authentication is off`)) {
		t.Fatalf("status JSON %s", b)
	}
	var out bytes.Buffer
	PrintStatus(&out, st)
	if !strings.Contains(out.String(), "api auth: none\n  WARNING: scheduler API authentication is off") {
		t.Fatalf("status text:\n%s", out.String())
	}
	if !strings.Contains(summary.String(), "WARNING: scheduler API authentication is off") {
		t.Fatalf("up's summary:\n%s", summary.String())
	}
}

// An existing credential is kept but made private; one that is not a
// regular file, or does not parse, stops up with an error naming it.
func TestCredentialChecks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scheduler", "shiro.ini")
	os.MkdirAll(filepath.Dir(path), 0o700)
	os.WriteFile(path, []byte("[users]\nme = pw\n"), 0o644)
	w, err := ensureCredential(path)
	if err != nil || !strings.Contains(w, "was readable by other users (mode 0644)") {
		t.Fatalf("loose credential: %q %v", w, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if b, _ := os.ReadFile(path); string(b) != "[users]\nme = pw\n" {
		t.Fatalf("existing credential replaced: %q", b)
	}
	os.WriteFile(path, []byte("[users]\nbroken\n"), 0o600)
	if _, err := ensureCredential(path); err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("broken credential: %v", err)
	}
	os.Remove(path)
	secret := filepath.Join(dir, "elsewhere")
	os.WriteFile(secret, []byte("[users]\nx = y\n"), 0o600)
	os.Symlink(secret, path)
	if _, err := ensureCredential(path); err == nil || !strings.Contains(err.Error(), "is a symbolic link") {
		t.Fatalf("symlinked credential: %v", err)
	}
	os.Remove(path)
	os.Mkdir(path, 0o700)
	if _, err := ensureCredential(path); err == nil || !strings.Contains(err.Error(), "is not a regular file") {
		t.Fatalf("directory credential: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "scheduler", ".shiro.ini.*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
