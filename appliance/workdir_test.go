package appliance

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestTaskUsersReachTheWorkDir: with the data dir a 0700 `mktemp -d`, a
// root appliance lets a real other user (nobody) pass through to the
// agents' work dir, where its sandboxes are, and read or list nothing else
// of the data dir.
func TestTaskUsersReachTheWorkDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only a root appliance runs tasks as other users")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	cfg := testConfig(t)
	if fi, err := os.Stat(cfg.DataDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("test data dir: %v %v, want a 0700 dir", fi.Mode(), err)
	}
	startUp(t, cfg)
	asNobody := func(script string) (string, error) {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := asNobody("cd " + AgentWorkDir(cfg)); err != nil {
		t.Errorf("nobody cannot reach the agent work dir %s: %v %s", AgentWorkDir(cfg), err, out)
	}
	for _, p := range []string{cfg.DataDir, AgentWorkDir(cfg), cfg.Path("logs")} {
		if out, err := asNobody("ls " + p); err == nil {
			t.Errorf("nobody lists %s: %s", p, out)
		}
	}
	for _, p := range []string{cfg.Path("env"), cfg.Path("logs", "master.log"), cfg.Path("aurorabox.lock")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if out, err := asNobody("cat " + p); err == nil {
			t.Errorf("nobody reads %s: %s", p, out)
		}
	}
	if fi, _ := os.Stat(cfg.DataDir); fi.Mode().Perm() != 0o711 {
		t.Errorf("data dir %v, want 0711 (search only)", fi.Mode().Perm())
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		path, dir string
		want      bool
	}{
		{"/a/b", "/a/b", true}, {"/a/b/c", "/a/b", true}, {"/a", "/a/b", false},
		{"/a/bc", "/a/b", false}, {"/", "/a", false}, {"/a/..b", "/a", true},
	} {
		if got := within(c.path, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
}
