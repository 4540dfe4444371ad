package appliance

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/internal/syncbuf"
)

func TestLogsTailAndFollow(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir()}
	os.MkdirAll(cfg.Path("logs"), 0o700)
	write := func(role, s string, flag int) {
		f, err := os.OpenFile(cfg.Path("logs", role+".log"), os.O_CREATE|os.O_WRONLY|flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write("zookeeper", "z1\nz2\nz3\n", os.O_APPEND)
	write("master", "m1\n", os.O_APPEND)

	var out strings.Builder
	if err := Logs(context.Background(), cfg, &out, LogOptions{Tail: 2}); err != nil {
		t.Fatal(err)
	}
	want := "zookeeper | z2\nzookeeper | z3\nmaster    | m1\n"
	if out.String() != want {
		t.Fatalf("tail:\n%q\nwant\n%q", out.String(), want)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var buf syncbuf.Buffer
	done := make(chan error)
	go func() {
		done <- Logs(ctx, cfg, &buf, LogOptions{Roles: []string{"master", "agent"}, Follow: true, Tail: 0, Poll: 5 * time.Millisecond})
	}()
	waitUntil := func(s string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(buf.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("never saw %q in %q", s, buf.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Logs picks its start offsets asynchronously: write until it sees us.
	for !strings.Contains(buf.String(), "master | sync\n") {
		write("master", "sync\n", os.O_APPEND)
		time.Sleep(10 * time.Millisecond)
	}
	write("master", "m2 partial", os.O_APPEND)
	write("master", " done\n", os.O_APPEND)
	waitUntil("master | m2 partial done\n")
	write("agent", "a1\n", os.O_APPEND) // a log that appears late
	waitUntil("agent  | a1\n")
	write("master", "fresh\n", os.O_TRUNC) // rotated/truncated
	waitUntil("master | fresh\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "m1") {
		t.Fatalf("Tail 0 must skip old lines: %q", buf.String())
	}
}
