package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/scheduler"
	"github.com/spf13/cobra"
)

func TestReadUsers(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "shiro.ini")
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	users, err := readUsers(write("[main]\nx = y\n\n[users]\n# comment\nroot = secret, admin\nbob=pw\n[roles]\nadmin = *\n"))
	if err != nil || len(users) != 2 || users["root"] != "secret" || users["bob"] != "pw" {
		t.Fatalf("users %v, %v", users, err)
	}
	if _, err := readUsers(write("[users]\nbroken line\n")); err == nil || !strings.Contains(err.Error(), "shiro.ini:2:") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := readUsers(write("[roles]\nadmin = *\n")); err == nil {
		t.Fatal("a file without users was accepted")
	}
}

// The profiled flags take the dev or aurora profile's values unless
// given; --reconciliation-interval sets both intervals unless they are
// given; --partition-aware=false reaches the scheduler's config.
func TestSchedulerKnobs(t *testing.T) {
	resolve := func(profile string, args ...string) (*schedulerKnobs, error) {
		cmd := &cobra.Command{Use: "scheduler"}
		k := addSchedulerKnobs(cmd)
		if err := cmd.Flags().Parse(args); err != nil {
			t.Fatal(err)
		}
		return k, k.resolve(cmd, profile)
	}
	dev, err := resolve("dev")
	if err != nil {
		t.Fatal(err)
	}
	aurora, err := resolve("aurora")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		dev, prod any
	}{
		{"max_schedule_attempts_per_sec", dev.sc.MaxScheduleAttemptsPerSec, aurora.sc.MaxScheduleAttemptsPerSec},
		{"scheduling_max_batch_size", dev.sc.SchedulingMaxBatchSize, aurora.sc.SchedulingMaxBatchSize},
		{"max_tasks_per_schedule_attempt", dev.sc.MaxTasksPerScheduleAttempt, aurora.sc.MaxTasksPerScheduleAttempt},
		{"offer_filter_duration", dev.sc.OfferFilterDuration, aurora.sc.OfferFilterDuration},
		{"min_offer_hold_time", dev.sc.OfferHold, aurora.sc.OfferHold},
		{"offer_hold_jitter_window", dev.sc.OfferHoldJitter, aurora.sc.OfferHoldJitter},
		{"reconciliation_initial_delay", dev.sc.ReconcileInitialDelay, aurora.sc.ReconcileInitialDelay},
		{"reconciliation_explicit_interval", dev.sc.ReconcileExplicitInterval, aurora.sc.ReconcileExplicitInterval},
		{"reconciliation_implicit_interval", dev.sc.ReconcileImplicitInterval, aurora.sc.ReconcileImplicitInterval},
		{"reconciliation_schedule_spread", dev.sc.ReconcileScheduleSpread, aurora.sc.ReconcileScheduleSpread},
		{"reconciliation_explicit_batch_interval", dev.sc.ReconcileExplicitBatchInterval, aurora.sc.ReconcileExplicitBatchInterval},
		{"unavailability_threshold", dev.sc.UnavailabilityThreshold, aurora.sc.UnavailabilityThreshold},
		{"partition_aware (disabled)", dev.sc.DisablePartitionAware, aurora.sc.DisablePartitionAware},
		{"history_prune_threshold", dev.sc.HistoryPruneThreshold, aurora.sc.HistoryPruneThreshold},
		{"history_max_per_job_threshold", dev.sc.HistoryMaxPerJob, aurora.sc.HistoryMaxPerJob},
		{"history_min_retention_threshold", dev.sc.HistoryMinRetention, aurora.sc.HistoryMinRetention},
		{"first_schedule_delay", dev.tc.FirstScheduleDelay, aurora.tc.FirstScheduleDelay},
		{"preemption_delay", dev.sc.PreemptionDelay, aurora.sc.PreemptionDelay},
		{"thermos_executor_cpu", dev.sc.Overhead.CPUs, aurora.sc.Overhead.CPUs},
		{"thermos_executor_ram", dev.sc.Overhead.MemMB, aurora.sc.Overhead.MemMB},
		{"initial_flapping_task_delay", dev.tc.InitialFlappingTaskDelay, aurora.tc.InitialFlappingTaskDelay},
		{"max_flapping_task_delay", dev.tc.MaxFlappingTaskDelay, aurora.tc.MaxFlappingTaskDelay},
		{"min_required_instances_for_sla_check", dev.sc.SlaMinRequiredInstances, aurora.sc.SlaMinRequiredInstances},
	} {
		want := map[string]string{
			"max_schedule_attempts_per_sec": "1000 40", "scheduling_max_batch_size": "100 3", "max_tasks_per_schedule_attempt": "1000 5",
			"offer_filter_duration": "0s 5s", "min_offer_hold_time": "1m0s 5m0s", "offer_hold_jitter_window": "0s 1m0s",
			"reconciliation_initial_delay": "0s 1m0s", "reconciliation_explicit_interval": "5m0s 1h0m0s",
			"reconciliation_implicit_interval": "5m0s 1h0m0s", "reconciliation_schedule_spread": "0s 30m0s",
			"reconciliation_explicit_batch_interval": "0s 5s", "unavailability_threshold": "1m0s 6m0s",
			"partition_aware (disabled)": "false true", "history_prune_threshold": "48h0m0s 48h0m0s",
			"history_max_per_job_threshold": "100 100", "history_min_retention_threshold": "1h0m0s 1h0m0s",
			"first_schedule_delay": "0s 1ms", "preemption_delay": "5s 3m0s",
			// Aurora 0.11's -thermos_executor_cpu/-thermos_executor_ram in
			// the aurora profile, a small Go executor's in the dev one.
			"thermos_executor_cpu": "0.01 0.25", "thermos_executor_ram": "32 128",
			// The dev profile throttles flapping tasks too (issue 15).
			"initial_flapping_task_delay": "1s 30s", "max_flapping_task_delay": "30s 5m0s",
			// Aurora's Vagrant devcluster's SLA threshold, and Aurora's.
			"min_required_instances_for_sla_check": "2 20",
		}[c.name]
		if got := fmt.Sprint(c.dev, " ", c.prod); got != want {
			t.Errorf("%s: dev and aurora %s, want %s", c.name, got, want)
		}
	}

	k, err := resolve("aurora", "--reconciliation-interval=10m", "--reconciliation-implicit-interval=20m",
		"--scheduling-max-batch-size=7", "--partition-aware", "--unavailability-threshold=0")
	if err != nil {
		t.Fatal(err)
	}
	if k.sc.Overhead != scheduler.AuroraExecutorOverhead {
		t.Errorf("aurora profile's executor overhead %+v", k.sc.Overhead)
	}
	if k.sc.ReconcileExplicitInterval != 10*time.Minute || k.sc.ReconcileImplicitInterval != 20*time.Minute ||
		k.sc.SchedulingMaxBatchSize != 7 || k.sc.DisablePartitionAware || k.sc.UnavailabilityThreshold >= 0 ||
		k.sc.MaxTasksPerScheduleAttempt != 5 {
		t.Errorf("explicit flags over the aurora profile: %+v", k.sc)
	}
	for _, args := range [][]string{{"--scheduling-max-batch-size=0"}, {"--offer-filter-duration=-1s"}, {"--max-schedule-attempts-per-sec=0"},
		{"--reconciliation-interval=0"}, {"--history-prune-threshold=0"}, {"--thermos-executor-cpu=-1"}, {"--thermos-executor-ram=-1"}} {
		if _, err := resolve("dev", args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := resolve("prod"); err == nil {
		t.Error("--timing-profile prod accepted")
	}
}

// --log-level (or AURORABOX_LOG_LEVEL) sets every logger's level before a
// command runs, so Debug lines can be turned on; a bad level exits 2.
func TestLogLevel(t *testing.T) {
	defer logLevel.Set(slog.LevelInfo)
	if code := run([]string{"aurorabox", "--log-level", "debug", "version"}); code != 0 {
		t.Fatalf("version with --log-level debug: exit %d", code)
	}
	if !newLogger().Enabled(context.Background(), slog.LevelDebug) {
		t.Error("--log-level debug: Debug lines are still off")
	}
	t.Setenv("AURORABOX_LOG_LEVEL", "warn")
	if code := run([]string{"aurorabox", "version"}); code != 0 {
		t.Fatalf("version with AURORABOX_LOG_LEVEL=warn: exit %d", code)
	}
	if l := newLogger(); l.Enabled(context.Background(), slog.LevelInfo) || !l.Enabled(context.Background(), slog.LevelWarn) {
		t.Error("AURORABOX_LOG_LEVEL=warn: want Warn on and Info off")
	}
	if code := run([]string{"aurorabox", "--log-level", "loud", "version"}); code != 2 {
		t.Errorf("--log-level loud: exit %d, want 2", code)
	}
}
