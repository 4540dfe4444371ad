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

// shellBlocks returns the ```sh blocks of the README section whose heading
// is title, in order.
func shellBlocks(t *testing.T, readme, title string) []string {
	t.Helper()
	start := strings.Index(readme, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("README has no section %q", title)
	}
	sec := readme[start+1:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	var out []string
	for {
		i := strings.Index(sec, "```sh\n")
		if i < 0 {
			return out
		}
		sec = sec[i+len("```sh\n"):]
		j := strings.Index(sec, "```")
		if j < 0 {
			t.Fatal("unterminated ```sh block")
		}
		out = append(out, sec[:j])
		sec = sec[j+3:]
	}
}

// TestReadmeTour runs the README's tour as written, with bash -e from the
// repository root, against an appliance on its own data dir and free ports
// (AURORABOX_DATA_DIR, AURORABOX_PORTS=auto, as the README says), then the
// parallel-cluster block. Every command must succeed, so the tour cannot
// rot: it covers up, status, the env file, the four URLs and the new
// /master/slaves and /master/frameworks, zkCli.sh, the tutorial job from
// examples/jobs through create, ssh, a rolling update that changes the
// greeting, killall, restart and down.
func TestReadmeTour(t *testing.T) {
	zkCli(t) // the tour calls it; skips where the zookeeper package is missing
	for _, tool := range []string{"jq", "curl", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the tour needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shellBlocks(t, string(readme), "A 60-second tour")
	if len(blocks) != 2 {
		t.Fatalf("the tour has %d sh blocks, want 2 (the tour, parallel clusters)", len(blocks))
	}
	for _, want := range []string{"examples/jobs/hello_world.aurora", "examples/jobs/hello_world_updated.aurora", "/master/slaves", "/master/frameworks", "aurorabox restart scheduler"} {
		if !strings.Contains(blocks[0], want) {
			t.Fatalf("the tour does not use %s", want)
		}
	}
	c := newCluster(t)
	// The Go caches stay where they are: the tour runs make build.
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatal(err)
	}
	ge := strings.Fields(string(goenv))
	env := append(os.Environ(), "AURORABOX_DATA_DIR="+c.dir, "AURORABOX_PORTS=auto", "HOME="+c.dir,
		"GOCACHE="+ge[0], "GOMODCACHE="+ge[1], "GOPATH="+ge[2])
	// One shell, as a reader who goes on from the tour to the
	// parallel-cluster example (PATH is set by the tour's first line).
	begin := time.Now()
	cmd := exec.Command("bash", "-e", "-o", "pipefail", "-x", "-c", strings.Join(blocks, "\n"))
	cmd.Dir = root
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README tour failed: %v\n%s", err, out)
	}
	t.Logf("the tour ran in %s", time.Since(begin).Round(time.Millisecond))
	for _, want := range []string{"\nRUNNING\n", "Hello world!", "Hello again, world!", "restarted scheduler", "aurorabox: stopped (data dir " + c.dir, "stopped and deleted /"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("tour output lacks %q:\n%s", want, out)
		}
	}
}
