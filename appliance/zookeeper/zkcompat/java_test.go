package zkcompat

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJavaClient compiles testdata/ZkCompatClient.java against the Debian
// ZooKeeper jars and runs it against both targets.
func TestJavaClient(t *testing.T) {
	r := needReal(t)
	if r.javac == "" {
		missingReal(t, "javac not found in PATH (install default-jdk-headless)")
	}
	classes := t.TempDir()
	src, err := filepath.Abs("testdata/ZkCompatClient.java")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, r.javac, "-nowarn", "-cp", r.classpath, "-d", classes, src).CombinedOutput()
	if err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}

	base := "/javacompat"
	want := [][2]string{
		{"SESSIONS_DISTINCT", "true"},
		{"NEGOTIATED_TIMEOUT", "10000"},
		{"CREATED", base},
		{"CREATE2_STAT", "0,3,true"},
		{"EPH_VISIBLE", "true"},
		{"EPH_OWNER_MATCHES", "true"},
		{"SEQ", "seq-0000000002"},
		{"GET", "v1"},
		{"SET_VERSION", "1"},
		{"DATA_WATCH", "NodeDataChanged " + base},
		{"CHILDREN", "eph,seq-0000000002,withstat"},
		{"CHILD_WATCH", "NodeChildrenChanged " + base},
		{"BADVERSION", "BADVERSION"},
		{"NONODE", "NONODE"},
		{"MULTI_ABORT", "BADVERSION m1exists=false"},
		{"MULTI_OK", "3"},
		{"EPH_WATCH", "NodeDeleted " + base + "/eph"},
		{"EPH_GONE", "true"},
		{"CLEANED", "true"},
		{"RESULT", "OK"},
	}
	for _, st := range targets() {
		t.Run(st.name, func(t *testing.T) {
			tg := st.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, r.java, "-cp", r.classpath+":"+classes, "ZkCompatClient", tg.Addr, base)
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			runErr := cmd.Run()
			got := map[string]string{}
			for _, line := range strings.Split(buf.String(), "\n") {
				if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
					if _, seen := got[k]; !seen {
						got[k] = v
					}
				}
			}
			for _, kv := range want {
				if g, ok := got[kv[0]]; !ok {
					t.Errorf("Java client printed no %s", kv[0])
				} else if g != kv[1] {
					t.Errorf("Java client %s = %q, want %q", kv[0], g, kv[1])
				}
			}
			if runErr != nil || t.Failed() {
				t.Logf("Java client (exit %v) output:\n%s", runErr, buf.String())
			}
		})
	}
}
