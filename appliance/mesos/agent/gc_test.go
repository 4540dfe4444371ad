package agent_test

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/agent"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// TestSandboxGC: a terminated executor's sandbox outlives it while the
// disk has room, and goes once the disk fills past the headroom; a running
// executor's sandbox stays.
func TestSandboxGC(t *testing.T) {
	var usage atomic.Value
	usage.Store(0.0)
	c := startCluster(t, func(cfg *agent.Config) {
		cfg.GCDelay, cfg.GCDiskHeadroom, cfg.DiskWatchInterval = time.Hour, 0.1, 50*time.Millisecond
		cfg.DiskUsage = func(string) float64 { return usage.Load().(float64) }
	})
	c.sched.launch(shellTask("brief", "true"), shellTask("lasting", "sleep 100"))
	c.awaitRunning("lasting")
	for st := c.sched.updateFor("brief"); st.GetState() != mesos.TASK_FINISHED; st = c.sched.updateFor("brief") {
		if s := st.GetState(); s != mesos.TASK_STARTING && s != mesos.TASK_RUNNING {
			t.Fatalf("brief: %s", st.GetState())
		}
	}
	brief, lasting := c.sandbox("brief"), c.sandbox("lasting")
	time.Sleep(300 * time.Millisecond) // several GC rounds with an empty disk
	if _, err := os.Stat(brief); err != nil {
		t.Fatalf("sandbox collected an hour early: %v", err)
	}
	usage.Store(0.95) // past 1 - headroom: the allowed age is zero
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(brief); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("terminated sandbox not collected on a full disk")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Lstat(filepath.Join(filepath.Dir(brief), "latest")); !os.IsNotExist(err) {
		t.Errorf("latest link to a collected run left behind: %v", err)
	}
	if _, err := os.Stat(lasting); err != nil {
		t.Fatalf("running executor's sandbox collected: %v", err)
	}
}
