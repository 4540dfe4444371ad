package health

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestShellProbeExitStatus(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cmd    string
		ok     bool
		reason string
	}{
		{"true", true, ""},
		{"exit 0", true, ""},
		{"echo fine; exit 0", true, ""},
		{"echo not healthy; echo to stderr >&2; exit 3", false,
			"Command 'echo not healthy; echo to stderr >&2; exit 3' returned non-zero exit status 3 with output 'not healthy\nto stderr\n'"},
		{"false", false, "Command 'false' returned non-zero exit status 1 with output ''"},
		{"kill -TERM $$", false, "Command 'kill -TERM $$' returned non-zero exit status -15 with output ''"},
		// bash's wording varies between versions: compared up to the output.
		{"no-such-command-here", false, "Command 'no-such-command-here' returned non-zero exit status 127 with output '/bin/bash: "},
	} {
		ok, reason := ShellProbe(ctx, tc.cmd, ShellOptions{Timeout: 10 * time.Second})
		if strings.HasSuffix(tc.reason, "/bin/bash: ") && strings.HasPrefix(reason, tc.reason) {
			reason = tc.reason
		}
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: got %v %q, want %v %q", tc.cmd, ok, reason, tc.ok, tc.reason)
		}
	}
}

func TestShellProbeOutputCapped(t *testing.T) {
	ok, reason := ShellProbe(context.Background(), "head -c 100000 /dev/zero | tr '\\0' x; exit 1", ShellOptions{Timeout: 10 * time.Second})
	if ok || !strings.HasSuffix(reason, strings.Repeat("x", 10)+"...'") || len(reason) > maxOutput+200 {
		t.Errorf("got %v, reason of %d bytes ending %q", ok, len(reason), reason[max(0, len(reason)-20):])
	}
}

func TestShellProbeDirAndEnv(t *testing.T) {
	dir := t.TempDir()
	// Write relative to the working directory; report the environment.
	cmd := `pwd > where; echo "$HEALTH_FOO" >> where; echo "${HOME:-unset}" >> where`
	ok, reason := ShellProbe(context.Background(), cmd, ShellOptions{
		Dir:     dir,
		Env:     []string{"HEALTH_FOO=bar", "PATH=/usr/bin:/bin"},
		Timeout: 10 * time.Second,
	})
	if !ok {
		t.Fatalf("failed: %s", reason)
	}
	b, err := os.ReadFile(filepath.Join(dir, "where"))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	want := real + "\nbar\nunset\n"
	if string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// state is the field after "(comm)".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || !strings.HasPrefix(s[i+1:], " Z")
}

// waitGone waits up to 5 s for pid to die.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Errorf("process %d survived the health check", pid)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestShellProbeTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	// A background child that ignores SIGTERM/SIGHUP, with the shell waiting
	// on it; only killing the whole group gets rid of it.
	cmd := `trap '' TERM HUP; sleep 300 & echo $! > child; wait`
	start := time.Now()
	ok, reason := ShellProbe(context.Background(), cmd, ShellOptions{Dir: dir, Timeout: time.Second})
	if ok || reason != TimeoutReason {
		t.Errorf("got %v %q, want %q", ok, reason, TimeoutReason)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("took %v", d)
	}
	waitGone(t, readPid(t, filepath.Join(dir, "child")))
}

func TestShellProbeCancel(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // cancel once the child is there
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if b, _ := os.ReadFile(filepath.Join(dir, "child")); len(b) > 0 && b[len(b)-1] == '\n' {
				break
			}
		}
		cancel()
	}()
	ok, reason := ShellProbe(ctx, `sleep 300 & echo $! > child; wait`, ShellOptions{Dir: dir})
	if ok || !strings.Contains(reason, "cancel") {
		t.Errorf("got %v %q", ok, reason)
	}
	waitGone(t, readPid(t, filepath.Join(dir, "child")))
}

func TestShellProbeLeavesNoBackgroundProcess(t *testing.T) {
	dir := t.TempDir()
	// The shell exits 0 at once, leaving a child behind that still holds
	// the output pipe.
	start := time.Now()
	ok, reason := ShellProbe(context.Background(), `sleep 300 & echo $! > child; exit 0`, ShellOptions{Dir: dir, Timeout: 10 * time.Second})
	if !ok {
		t.Errorf("failed: %s", reason)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
	waitGone(t, readPid(t, filepath.Join(dir, "child")))
}

func TestShellProbeEscapedProcessDoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	// setsid leaves the group, so the kill misses it, and it keeps the
	// output pipe open: the probe must not wait for it (WaitDelay).
	start := time.Now()
	// The child writes its pid only once it has left the group.
	cmd := `setsid sh -c 'echo $$ > child; exec sleep 300' & while [ ! -s child ]; do sleep 0.01; done; exit 0`
	ok, reason := ShellProbe(context.Background(), cmd, ShellOptions{Dir: dir, Timeout: 10 * time.Second})
	pid := readPid(t, filepath.Join(dir, "child"))
	syscall.Kill(pid, syscall.SIGKILL)
	if !ok {
		t.Errorf("failed: %s", reason)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestShellProbeStartError(t *testing.T) {
	ok, reason := ShellProbe(context.Background(), "true", ShellOptions{Dir: filepath.Join(t.TempDir(), "missing")})
	if ok || reason != "OSError: "+syscall.ENOENT.Error() {
		t.Errorf("got %v %q", ok, reason)
	}
}

func TestShellProbeCredential(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch users")
	}
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "health-credential")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	ok, reason := ShellProbe(context.Background(), `id -u > uid; id -g > gid`, ShellOptions{
		Dir:        dir,
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534},
		Timeout:    10 * time.Second,
	})
	if !ok {
		t.Fatalf("failed: %s", reason)
	}
	for _, f := range []string{"uid", "gid"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != "65534" {
			t.Errorf("%s = %q", f, b)
		}
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 65534 {
			t.Errorf("%s owned by %d", f, st.Uid)
		}
	}
}
