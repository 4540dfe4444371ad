package executor

import (
	"os"
	"os/user"
	"path/filepath"
	"testing"
)

func TestUnreachable(t *testing.T) {
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
	if d := unreachable(open, nobody); d != "" {
		t.Errorf("nobody cannot reach a 0755 chain: blocked at %s", d)
	}
	if d := unreachable(closed, nobody); d != filepath.Join(base, "closed") {
		t.Errorf("nobody reaches through a 0700 directory it does not own (blocked at %q)", d)
	}
	if unreachable(filepath.Join(base, "missing"), nobody) == "" {
		t.Error("a missing directory is reachable")
	}
}
