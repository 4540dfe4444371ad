package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/thermos/schema"
)

var processNameRe = regexp.MustCompile(`^[^./][^/]*$`)

// Validate runs the client-side checks of Aurora's client/config.py and
// the Thermos planner rules (§3.3, §4.1, §4.3 of the reference). It
// reports every problem found, one per line.
func (j *Job) Validate() error {
	if j.err != nil {
		return j.err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if err := (api.JobKey{Role: j.Role, Environment: j.Environment, Name: j.Name}).Validate(); err != nil {
		bad("%v", err)
	}
	if j.Cluster == "" {
		bad("cluster must not be empty")
	}
	if j.Instances <= 0 {
		bad("instances must be positive, not %d", j.Instances)
	}
	t := j.Task
	if len(t.Processes) == 0 {
		bad("task %s has no processes", t.Name)
	}
	if r := t.Resources; r == nil {
		bad("task %s must specify resources", t.Name)
	} else {
		if r.CPU <= 0 {
			bad("task %s: cpu must be positive, not %v", t.Name, r.CPU)
		}
		if r.RAM/mb <= 0 {
			bad("task %s: ram must be at least 1MB, not %d bytes", t.Name, r.RAM)
		}
		if r.Disk/mb <= 0 {
			bad("task %s: disk must be at least 1MB, not %d bytes", t.Name, r.Disk)
		}
		if r.GPU < 0 {
			bad("task %s: gpu must not be negative", t.Name)
		}
	}
	errs = append(errs, checkPlan(t)...)

	u := j.UpdateConfig
	if u.MaxTotalFailures >= j.Instances && j.Instances > 0 {
		bad("update_config.max_total_failures (%d) must be lower than the number of instances (%d)", u.MaxTotalFailures, j.Instances)
	}
	if _, dedicated := j.Constraints["dedicated"]; dedicated {
		if min := j.Instances * 2 / 100; u.MaxTotalFailures < min {
			bad("a dedicated job with %d instances needs update_config.max_total_failures >= %d (2%% of the instances)", j.Instances, min)
		}
	}
	if u.WatchSecs < 0 {
		bad("update_config.watch_secs must not be negative")
	}
	if u.BatchSize <= 0 {
		bad("update_config.batch_size must be positive")
	}
	if u.PulseIntervalSecs != nil && *u.PulseIntervalSecs < 60 {
		bad("update_config.pulse_interval_secs must be at least 60, not %d", *u.PulseIntervalSecs)
	}
	if s := u.UpdateStrategy; s != nil {
		if u.BatchSize > 1 || u.WaitForBatchCompletion {
			bad("update_config: update_strategy cannot be combined with batch_size > 1 or wait_for_batch_completion (ambiguous)")
		}
		if s.VariableBatch != nil {
			if len(s.VariableBatch.BatchSizes) == 0 {
				bad("update_config: VariableBatchUpdateStrategy needs batch_sizes")
			}
			for _, b := range s.VariableBatch.BatchSizes {
				if b <= 0 {
					bad("update_config: batch sizes must be positive")
					break
				}
			}
		}
	}
	h := j.HealthCheckConfig
	if negative(h.InitialIntervalSecs) || negative(h.IntervalSecs) || negative(h.TimeoutSecs) || negative(h.MaxConsecutiveFailures) || negative(h.MinConsecutiveSuccesses) {
		bad("health_check_config values must not be negative")
	}
	if h.HealthChecker.HTTP != nil && h.HealthChecker.Shell != nil {
		bad("health_check_config.health_checker: set http or shell, not both")
	}
	if a := j.Announce; a != nil {
		_, dedicated := j.Constraints["dedicated"]
		for alias, port := range a.Portmap {
			if _, err := strconv.Atoi(port); err == nil && !dedicated {
				bad("announce.portmap[%s]: static port %s requires a dedicated constraint", alias, port)
			}
		}
	}
	if d, ok := j.Constraints["dedicated"]; ok {
		role, _, _ := strings.Cut(d, "/")
		if role != j.Role && role != "*" {
			bad("dedicated constraint %q does not match role %s", d, j.Role)
		}
	}
	if j.CronSchedule != "" && j.Service {
		bad("a service cannot have a cron_schedule")
	}
	if j.MaxTaskFailures < -1 {
		bad("max_task_failures must be -1 (infinite) or more")
	}
	return errors.Join(errs...)
}

// negative reports whether a set value is below zero.
func negative[T int | float64](p *T) bool { return p != nil && *p < 0 }

// Warnings are the client's non-fatal remarks about the job.
func (j *Job) Warnings() []string {
	var w []string
	if a := j.Announce; a != nil {
		primary := a.PrimaryPortOrDefault()
		bound := false
		for _, p := range j.Ports() {
			if p == primary {
				bound = true
			}
		}
		if _, ok := a.Portmap[primary]; ok {
			bound = true
		}
		if !bound {
			w = append(w, fmt.Sprintf("Announcer specified primary port as %q but no processes have bound that port", primary))
		}
	}
	if j.Production && j.Tier == "" {
		w = append(w, "production=True is deprecated; set tier instead")
	}
	return w
}

// checkPlan applies the Thermos planner's rules to the ordering constraints.
func checkPlan(t schema.Task) []error {
	var errs []error
	procs := map[string]schema.Process{}
	for _, p := range t.Processes {
		if !processNameRe.MatchString(p.Name) {
			errs = append(errs, fmt.Errorf("task %s: process name %q is not a valid file name", t.Name, p.Name))
		}
		if _, dup := procs[p.Name]; dup {
			errs = append(errs, fmt.Errorf("task %s: duplicate process name %q", t.Name, p.Name))
		}
		procs[p.Name] = p
	}
	deps := map[string][]string{}
	for _, c := range t.Constraints {
		for i, n := range c.Order {
			p, ok := procs[n]
			if !ok {
				errs = append(errs, fmt.Errorf("task %s: order constraint names unknown process %q", t.Name, n))
				continue
			}
			if i == 0 {
				continue
			}
			prev, ok := procs[c.Order[i-1]]
			if !ok {
				continue
			}
			if prev.Final != p.Final {
				errs = append(errs, fmt.Errorf("task %s: %s and %s are ordered but only one of them is final", t.Name, prev.Name, n))
			}
			if prev.Daemon {
				errs = append(errs, fmt.Errorf("task %s: %s may not depend on the daemon process %s", t.Name, n, prev.Name))
			}
			if prev.Ephemeral && !p.Ephemeral {
				errs = append(errs, fmt.Errorf("task %s: the non-ephemeral process %s may not depend on the ephemeral process %s", t.Name, n, prev.Name))
			}
			deps[n] = append(deps[n], prev.Name)
		}
	}
	// Cycle check (depth-first).
	state := map[string]int{}
	var visit func(n string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			return true
		case 2:
			return false
		}
		state[n] = 1
		for _, d := range deps[n] {
			if visit(d) {
				return true
			}
		}
		state[n] = 2
		return false
	}
	for _, p := range t.Processes {
		if visit(p.Name) {
			errs = append(errs, fmt.Errorf("task %s: the order constraints have a cycle", t.Name))
			break
		}
	}
	return errs
}
