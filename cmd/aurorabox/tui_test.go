package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

func TestParseEnvFile(t *testing.T) {
	got := parseEnvFile("# Written by `aurorabox up`. Use it with: . /x/env\n" +
		"export AURORABOX_CLUSTER='devcluster'\n" +
		"export AURORABOX_DATA_DIR='/tmp/it'\\''s here'\n" +
		"export AURORABOX_OBSERVER_URL='http://127.0.0.1:1338'\n\n")
	want := map[string]string{"AURORABOX_CLUSTER": "devcluster", "AURORABOX_DATA_DIR": "/tmp/it's here",
		"AURORABOX_OBSERVER_URL": "http://127.0.0.1:1338"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseEnvFile = %v", got)
	}
}

func TestCommandStatus(t *testing.T) {
	// status --json exits 1 when the appliance is unhealthy: the document
	// still counts.
	st, err := commandStatus(context.Background(), `echo '{"version": 1, "running": true, "cluster": "c", "components": []}'; exit 1`)
	if err != nil || st.Cluster != "c" || !st.Running {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := commandStatus(context.Background(), "echo nope >&2; exit 3"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a failing command: %v", err)
	}
}

func TestTUICommand(t *testing.T) {
	cmd, _, err := rootCommand().Find([]string{"tui"})
	if err != nil || cmd.Name() != "tui" {
		t.Fatalf("no tui command: %v", err)
	}
	for _, f := range []string{"observer-url", "master-url", "status-cmd", "no-status", "refresh", "cluster", "data-dir"} {
		if cmd.Flags().Lookup(f) == nil && cmd.InheritedFlags().Lookup(f) == nil {
			t.Errorf("tui has no --%s", f)
		}
	}
}
