package zklog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-zookeeper/zk"
)

var _ zk.Logger = Logger{}

func TestPrintfGoesToSlog(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&buf, nil)), slog.LevelWarn)
	l.Printf("failed to connect to %s: %v\n", "127.0.0.1:2181", "refused")
	got := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"msg":"failed to connect to 127.0.0.1:2181: refused"`, `"component":"zk-client"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %s lacks %s", got, want)
		}
	}
}

func TestLevelFiltered(t *testing.T) {
	var buf bytes.Buffer
	New(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), slog.LevelDebug).Printf("connected to %s", "x")
	if buf.Len() != 0 {
		t.Errorf("a debug line reached an info logger: %q", buf.String())
	}
	New(nil, slog.LevelError).Printf("nothing") // no logger: discarded, no panic
}
