package agentproto

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ReadSecret takes a 0600 (or stricter) regular file's secret, trimmed,
// and refuses one others can read, a short one, one with white space
// inside and a symlink.
func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	good := strings.Repeat("ab", 32)
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
		want    string // error substring; "" = ok
	}{
		"ok":       {good + "\n", 0o600, ""},
		"shared":   {good, 0o640, "mode 0640"},
		"short":    {"abc", 0o600, "3 characters, want at least 32"},
		"spaces":   {good[:20] + " " + good[20:], 0o600, "white space"},
		"readonly": {good, 0o400, ""},
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(c.content), c.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode)
		b, err := ReadSecret(p)
		switch {
		case c.want == "" && (err != nil || string(b) != good):
			t.Errorf("%s: %q %v", name, b, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want one saying %q", name, err, c.want)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "ok"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(filepath.Join(dir, "link")); err == nil {
		t.Error("a symlinked secret file was read")
	}
}
