package executor

import (
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

func TestCanReach(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	base := t.TempDir()
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	open := filepath.Join(base, "open", "runs")
	closed := filepath.Join(base, "closed", "runs")
	os.MkdirAll(open, 0o755)
	os.MkdirAll(closed, 0o755)
	os.Chmod(filepath.Join(base, "closed"), 0o700)
	if !canReach(open, nobody) {
		t.Error("nobody cannot reach a 0755 chain")
	}
	if canReach(closed, nobody) {
		t.Error("nobody reaches through a 0700 directory it does not own")
	}
	if canReach(filepath.Join(base, "missing"), nobody) {
		t.Error("a missing directory is reachable")
	}
}
