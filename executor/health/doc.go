// Package health is the Thermos executor's health checker (Aurora's
// executor/common/health_checker.py and common/health_check/*): it decides
// when a service task may be reported TASK_RUNNING and when a failing task
// must be ended with TASK_FAILED (§6.1–6.2 of the reference).
//
// The package has three layers:
//
//   - Checker is the pure, clock-free state machine. It is fed one attempt's
//     outcome at a time (Record, RecordSnoozed) and answers Pending, Healthy
//     or Failed with the task's status message. All of Aurora's counting
//     rules (grace attempts, min_consecutive_successes, the attempt deadline,
//     fail-fast, max_consecutive_failures) live here.
//   - HTTPProbe and ShellProbe perform one attempt: GET
//     http://localhost:<health port><endpoint>, or /bin/bash -c <command> in
//     its own process group, each with the configured timeout and with
//     Aurora's failure reasons.
//   - Monitor runs attempts every interval_secs with an injected Clock,
//     honours the snooze file (<sandbox>/.healthchecksnooze), keeps Aurora's
//     metrics (Stats) and reports verdict changes: Healthy once (the executor
//     then sends TASK_RUNNING), then possibly Failed (TASK_FAILED with the
//     message).
//
// Applies tells whether a task gets a health checker at all: an HTTP check
// needs a port named "health"; without one Aurora uses a no-op checker that
// is healthy at once (a Monitor with a nil Probe behaves like that). Shell
// checks apply regardless of ports.
//
// The executor wires it up roughly so:
//
//	cfg := job.HealthCheckConfig.Resolved()
//	cfg.Shell = interpolate(cfg.Shell) // {{thermos.ports[..]}}, {{thermos.task_id}}, {{mesos.instance}}
//	probe := health.ProbeFor(cfg, ports, health.ShellOptions{Dir: sandbox, Credential: roleUser})
//	m := health.NewMonitor(cfg, probe, sandbox, nil)
//	go m.Run(ctx, func(v health.Verdict, msg string) { ... TASK_RUNNING / TASK_FAILED ... })
package health
