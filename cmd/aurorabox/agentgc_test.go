package main

import (
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance"
	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/spf13/pflag"
)

// up's --gc-delay, --gc-disk-headroom and --disk-watch-interval reach every
// agent it starts, as the agent command's flags of the same names.
func TestUpPassesSandboxGCToAgents(t *testing.T) {
	fs := pflag.NewFlagSet("up", pflag.ContinueOnError)
	config.AddFlags(fs)
	config.AddUpFlags(fs)
	if err := fs.Parse([]string{"--data-dir", t.TempDir(), "--agents", "2", "--gc-delay", "2h", "--gc-disk-headroom", "0", "--disk-watch-interval", "7s"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(fs, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	agents := 0
	for _, c := range appliance.Components(cfg, "/bin/aurorabox") {
		if c.Args[0] != "agent" {
			continue
		}
		agents++
		// The agent as the binary has it: with the root's persistent
		// flags (--log-level, which up passes to every component).
		cmd, _, err := rootCommand().Find([]string{"agent"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(c.Args[1:]); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		f := cmd.Flags()
		delay, _ := f.GetDuration("gc-delay")
		headroom, _ := f.GetFloat64("gc-disk-headroom")
		watch, _ := f.GetDuration("disk-watch-interval")
		if delay != 2*time.Hour || headroom != 0 || watch != 7*time.Second || !f.Changed("gc-disk-headroom") {
			t.Errorf("%s: gc-delay %s, gc-disk-headroom %g, disk-watch-interval %s; want 2h, 0 and 7s", c.Name, delay, headroom, watch)
		}
	}
	if agents != 2 {
		t.Fatalf("%d agents, want 2", agents)
	}
}

// The agent command refuses sandbox GC settings out of range, naming the
// setting (its config key, as for every setting), before it starts
// anything; the config file and environment set them too.
func TestAgentRefusesBadSandboxGC(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--gc-disk-headroom", "1.5"}, "gc_disk_headroom: 1.5 must be between 0 and 1"},
		{[]string{"--gc-disk-headroom", "-1"}, "gc_disk_headroom: -1 must be between 0 and 1"},
		{[]string{"--gc-delay", "-1h"}, "gc_delay: -1h0m0s must be positive"},
		{[]string{"--disk-watch-interval", "0s"}, "disk_watch_interval: 0s must be positive"},
	} {
		root := rootCommand()
		root.SetArgs(append([]string{"agent", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"}, c.args...))
		if err := root.Execute(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error with %q", c.args, err, c.want)
		}
	}
	t.Setenv("AURORABOX_GC_DISK_HEADROOM", "7")
	root := rootCommand()
	root.SetArgs([]string{"agent", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "gc_disk_headroom: 7 must be between 0 and 1") {
		t.Errorf("AURORABOX_GC_DISK_HEADROOM=7: %v", err)
	}
}
