package appliance

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheckDestroyableRefuses(t *testing.T) {
	base := t.TempDir()
	home := filepath.Join(base, "home", "me")
	plain := filepath.Join(base, "plain")
	owned := filepath.Join(base, "owned")
	link := filepath.Join(base, "link")
	for _, d := range []string{home, plain, owned} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(owned, "aurorabox.lock"), nil, 0o600)
	os.WriteFile(filepath.Join(home, "aurorabox.lock"), nil, 0o600)
	os.Symlink(owned, link)
	for _, c := range []struct{ dir, want string }{
		{"/", "root directory"},
		{"relative/dir", "not an absolute path"},
		{home, "home directory"},
		{home + "/", "home directory"},
		{filepath.Dir(home), "home directory"},
		{plain, "does not look like an aurorabox data dir"},
		{link, "symbolic link"},
	} {
		ok, err := CheckDestroyable(c.dir, home)
		if ok || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ok %v, err %v; want an error saying %q", c.dir, ok, err, c.want)
		}
	}
	if ok, err := CheckDestroyable(filepath.Join(base, "missing"), home); ok || err != nil {
		t.Errorf("missing dir: %v %v", ok, err)
	}
	if ok, err := CheckDestroyable(owned, home); !ok || err != nil {
		t.Errorf("owned dir: %v %v", ok, err)
	}
}

func TestDestroyStopsAndDeletes(t *testing.T) {
	cfg := testConfig(t)
	r := startUp(t, cfg)
	st, err := GetStatus(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := Destroy(context.Background(), cfg, "/nonexistent-home")
	if err != nil || !deleted {
		t.Fatalf("destroy: %v %v", deleted, err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data dir still there: %v", err)
	}
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("up did not return")
	}
	for _, c := range st.Components {
		if syscall.Kill(c.PID, 0) == nil {
			t.Fatalf("component %s (%d) still runs", c.Name, c.PID)
		}
	}
	r.done <- nil // for startUp's cleanup
}

func TestRestartComponent(t *testing.T) {
	cfg := testConfig(t)
	startUp(t, cfg)
	st, err := GetStatus(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Restart(context.Background(), cfg, []string{"master"}, &out); err != nil {
		t.Fatal(err)
	}
	after, err := GetStatus(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if after.Components[0].PID != st.Components[0].PID || after.Components[1].PID == st.Components[1].PID || !after.Healthy {
		t.Fatalf("before %+v\nafter %+v", st.Components, after.Components)
	}
	if !strings.Contains(out.String(), "restarted master") {
		t.Fatalf("output %q", out.String())
	}
	var uc *UnknownComponentError
	if err := Restart(context.Background(), cfg, []string{"master", "nosuch"}, &out); !errors.As(err, &uc) || uc.Name != "nosuch" {
		t.Fatalf("unknown component: %v", err)
	}
	// Nothing was restarted: names are checked first.
	if again, _ := GetStatus(context.Background(), cfg); again.Components[1].PID != after.Components[1].PID {
		t.Fatal("master restarted although a name was unknown")
	}

	other := testConfig(t)
	if err := Restart(context.Background(), other, []string{"master"}, &out); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("not running: %v", err)
	}
}
