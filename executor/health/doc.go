// Package health is the Thermos executor's health checker (Aurora 0.11's
// executor/common/health_checker.py and common/health_check/*): it decides
// when a running service task must be ended with TASK_FAILED because its
// health checks fail (§6.1–6.2 of the reference). As in Aurora 0.11 it does
// not decide TASK_RUNNING: the executor sends that once it has started the
// task's processes, and the first check is made initial_interval_secs
// later.
//
// The package has three layers:
//
//   - Checker is the pure, clock-free state machine. It is fed one attempt's
//     outcome at a time (Record, RecordSnoozed) and answers Healthy or
//     Failed with the task's status message (0.11's counting:
//     max_consecutive_failures).
//   - HTTPProbe and ShellProbe perform one attempt: GET
//     http://localhost:<health port><endpoint>, or /bin/bash -c <command> in
//     its own process group, each with the configured timeout and with
//     Aurora's failure reasons.
//   - Monitor waits initial_interval_secs, then runs attempts every
//     interval_secs with an injected Clock, honours the snooze file
//     (<sandbox>/.healthchecksnooze), keeps Aurora's metrics (Stats) and
//     returns once the verdict is Failed (or it is stopped).
//
// Applies tells whether a task gets a health checker at all: an HTTP check
// needs a port named "health"; without one Aurora has none (a Monitor with
// a nil Probe never fails). Shell checks apply regardless of ports.
//
// The executor wires it up roughly so:
//
//	cfg := job.HealthCheckConfig.Resolved()
//	cfg.Shell = interpolate(cfg.Shell) // {{thermos.ports[..]}}, {{thermos.task_id}}, {{mesos.instance}}
//	probe := health.ProbeFor(cfg, ports, health.ShellOptions{Dir: sandbox, Credential: roleUser})
//	m := health.NewMonitor(cfg, probe, sandbox, nil)
//	go func() { if v, msg := m.Run(ctx); v == health.Failed { ... TASK_FAILED with msg ... } }()
package health
