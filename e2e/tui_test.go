//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxTUI is `aurorabox tui` in a detached tmux session on its own server
// socket, with the appliance's env file sourced.
type tmuxTUI struct {
	t      *testing.T
	tmux   string
	socket string
	last   string // the last capture
}

func (m *tmuxTUI) cmd(args ...string) (string, error) {
	out, err := exec.Command(m.tmux, append([]string{"-S", m.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (m *tmuxTUI) capture() string {
	out, err := m.cmd("capture-pane", "-p", "-t", "tui")
	if err != nil {
		m.t.Fatalf("tmux capture-pane: %v %s", err, out)
	}
	m.last = out
	return out
}

// keys sends tmux key names (Enter, Escape, ...) or text, one at a time
// with a pause, as a person types (an Escape followed at once by a key
// would read as alt+key).
func (m *tmuxTUI) keys(keys ...string) {
	for _, k := range keys {
		if out, err := m.cmd("send-keys", "-t", "tui", k); err != nil {
			m.t.Fatalf("tmux send-keys %s: %v %s", k, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitScreen waits until the screen shows every one of wants.
func (m *tmuxTUI) waitScreen(what string, timeout time.Duration, wants ...string) string {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := m.capture()
		ok := true
		for _, w := range wants {
			ok = ok && strings.Contains(s, w)
		}
		if ok {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("timed out waiting for %s (%q); the screen:\n%s", what, wants, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// save logs a screen and keeps it under $TMPDIR/aurorabox-e2e-screenshots.
func (m *tmuxTUI) save(name, screen string) {
	dir := filepath.Join(os.TempDir(), "aurorabox-e2e-screenshots")
	os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, m.t.Name()+"-"+name+".txt")
	os.WriteFile(file, []byte(screen), 0o644)
	m.t.Logf("capture of the %s view (%s):\n%s", name, file, screen)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// TestTUI runs `aurorabox tui` in tmux against an appliance with the
// tutorial's hello_world job running, drills down to the job, its task and
// the process's stdout with keys, and reads the screen with capture-pane.
func TestTUI(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("AURORABOX_REQUIRE_TMUX") == "1" {
			t.Fatal("tmux not installed")
		}
		t.Skip("tmux not installed (apt-get install tmux)")
	}
	c := newCluster(t)
	c.up()
	cfg := filepath.Join(c.dir, "hello_world.aurora")
	os.WriteFile(cfg, []byte(helloWorld), 0o644)
	if r := c.aurora("job", "create", "devcluster/www-data/test/hello", cfg, "--wait-until", "RUNNING"); r.code != 0 {
		t.Fatalf("job create: %d %s %s", r.code, r.stdout, r.stderr)
	}

	m := &tmuxTUI{t: t, tmux: tmux, socket: filepath.Join(c.dir, "tmux.sock")}
	t.Cleanup(func() {
		if t.Failed() && m.last != "" {
			if b, err := os.ReadFile(filepath.Join(c.dir, "tui.err")); err == nil && len(b) > 0 {
				t.Logf("tui stderr:\n%s", b)
			}
		}
		m.cmd("kill-server")
	})
	// The env file is what a person sources; HOME is the test's, so that
	// no clusters.json of the machine's user gets in.
	script := ". " + shellQuote(filepath.Join(c.dir, "env")) + " && " + shellQuote(bin(t)) + " tui 2>" +
		shellQuote(filepath.Join(c.dir, "tui.err")) + "; echo \"TUI EXITED $?\"; sleep 600"
	if out, err := exec.Command(tmux, "-S", m.socket, "new-session", "-d", "-x", "100", "-y", "30", "-s", "tui",
		"env", "HOME="+c.dir, "TERM=xterm-256color", "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}

	s := m.waitScreen("the overview", 20*time.Second, "Appliance devcluster healthy", "scheduler", "observer", "enter: jobs")
	m.save("overview", s)

	m.keys("Enter")
	s = m.waitScreen("the jobs", 20*time.Second, "www-data   test     hello", "1 RUNNING", "1 job by role/env")
	m.save("jobs", s)

	m.keys("Enter")
	s = m.waitScreen("the job's instances", 20*time.Second, "› www-data/test/hello", "RUNNING    127.0.0.1", "1 instance")
	m.save("instances", s)

	m.keys("Enter")
	s = m.waitScreen("the task and its process", 20*time.Second, "Task www-data-test-hello-0-", "thermos ACTIVE", "hello", "1 process")
	if !strings.Contains(s, "RUNNING      1") {
		t.Errorf("the hello process is not shown running with 1 run:\n%s", s)
	}
	m.save("task", s)

	m.keys("Enter")
	s = m.waitScreen("the process's stdout", 20*time.Second, "hello · run 0 · [stdout] stderr", "hello world", "following")
	m.save("log", s)

	// The log pane follows the file: the loop prints every 10 s.
	n := strings.Count(s, "hello world")
	s = m.waitScreen("a new line in the log", 30*time.Second, strings.Repeat("hello world\n", n+1))
	m.save("log-followed", s)

	m.keys("s")
	m.waitScreen("the process's stderr", 10*time.Second, "stdout [stderr]")
	m.keys("f")
	s = m.waitScreen("the sandbox", 10*time.Second, "Sandbox of www-data-test-hello-0-", ".logs/")
	m.save("files", s)
	m.keys("Enter", "Enter", "Enter")
	m.waitScreen("the run's log dir", 10*time.Second, "› .logs › hello › 0", "stdout", "stderr")
	m.keys("End", "Enter")
	s = m.waitScreen("the stdout file", 10*time.Second, "/.logs/hello/0/stdout", "hello world")
	m.save("file", s)

	// Back to the instances; k kills the instance through the scheduler's
	// authenticated API, with the appliance's credential.
	for i := 0; i < 8 && !strings.Contains(m.capture(), "1 instance"); i++ {
		m.keys("Escape")
	}
	m.waitScreen("the job's instances again", 10*time.Second, "› www-data/test/hello", "1 instance")
	m.keys("k")
	m.waitScreen("the kill prompt", 10*time.Second, "[y/N]")
	m.keys("y")
	s = m.waitScreen("the instance killed", 30*time.Second, "KILLED")
	if strings.Contains(s, "Authentication failed") {
		t.Fatalf("kill from the TUI:\n%s", s)
	}
	m.save("killed", s)

	m.keys("q")
	m.waitScreen("the TUI to exit", 10*time.Second, "TUI EXITED 0")
}
