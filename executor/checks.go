package executor

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/serverset"
	"github.com/aurorabox/aurorabox/thermos/schema"

	"github.com/aurorabox/aurorabox/executor/announcer"
	"github.com/aurorabox/aurorabox/executor/health"
	"github.com/aurorabox/aurorabox/executor/runner"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// maxCheckOutput bounds the output of a shell health check kept for its
// failure reason.
const maxCheckOutput = 4096

// startChecks starts the status checkers of §6.1 once the task is RUNNING:
// the health checker, which may fail the task (its first check waits
// initial_interval_secs, as in Aurora 0.11), and the announcer.
func (e *thermos) startChecks(ctx context.Context, r *runner.Runner, at *api.AssignedTask, job *schema.Job, u *user.User, host string) {
	hc := job.HealthCheckConfig.Resolved()
	sandbox := r.Header().Sandbox
	if hc.Shell != "" {
		b := runner.Bindings{Ports: at.AssignedPorts, TaskID: at.TaskID, User: r.Header().User, Instance: at.InstanceID, Hostname: host}
		cmd, err := b.Interpolate(hc.Shell)
		if err != nil {
			go e.teardown(status{mesos.TASK_FAILED, mesos.REASON_TASK_INVALID.Enum(), "Invalid health check: " + err.Error()}, PreemptionWait)
			return
		}
		hc.Shell = cmd
	}
	var probe health.Probe
	if health.Applies(hc, at.AssignedPorts) {
		if hc.Shell != "" {
			probe = e.shellProbe(hc, sandbox, u)
		} else {
			probe = health.ProbeFor(hc, at.AssignedPorts, health.ShellOptions{})
		}
	}
	m := health.NewMonitor(hc, probe, sandbox, nil)
	go func() {
		if v, msg := m.Run(ctx); v == health.Failed {
			e.log.Warn("health check failed", "message", msg)
			e.teardown(healthFailure(msg), PreemptionWait)
		}
	}()
	if job.Announce != nil && e.cfg.AnnouncerEnsemble != "" {
		e.aux.Add(1)
		go func() {
			defer e.aux.Done()
			e.announce(ctx, at, job, hc, host)
		}()
	}
}

// shellProbe runs a shell health check through the executor's reaper (an
// os/exec child would race with it), as the role user, in the sandbox.
func (e *thermos) shellProbe(hc schema.HealthCheck, sandbox string, u *user.User) health.Probe {
	var cred *syscall.Credential
	env := []string{"HOME=" + sandbox, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if u != nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		env = append(env, "USER="+u.Username, "LOGNAME="+u.Username)
	}
	return func(ctx context.Context) (bool, string) {
		if hc.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, hc.Timeout)
			defer cancel()
		}
		ws, out, err := e.procs.Output(ctx, []string{"/bin/bash", "-c", hc.Shell}, sandbox, env, cred, maxCheckOutput)
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return false, health.TimeoutReason
		case err != nil:
			return false, "OSError: " + err.Error()
		case ws.ExitStatus() == 0 && !ws.Signaled():
			return true, ""
		}
		status := ws.ExitStatus()
		if ws.Signaled() {
			status = -int(ws.Signal()) // as Python's returncode, which Aurora's reason shows
		}
		return false, fmt.Sprintf("Command '%s' returned non-zero exit status %d with output '%s'", hc.Shell, status, strings.TrimSpace(string(out)))
	}
}

// announce registers the task in its ServerSet until ctx ends (§8.5).
func (e *thermos) announce(ctx context.Context, at *api.AssignedTask, job *schema.Job, hc schema.HealthCheck, host string) {
	if e.cfg.AnnouncerHostname != "" {
		host = e.cfg.AnnouncerHostname
	}
	primary, additional, err := announcer.Endpoints(*job.Announce, at.AssignedPorts, host)
	if err != nil {
		e.teardown(status{mesos.TASK_FAILED, nil, "Announcer: " + err.Error()}, PreemptionWait)
		return
	}
	// The job key, never the executor config, names the ServerSet (a
	// custom zk_path needs the executor's opt-in: checkIdentity).
	key := at.Task.Job
	path := announcer.ServerSetPath(e.cfg.AnnouncerServersetPath, key.Role, key.Environment, key.Name)
	if job.Announce.ZKPath != "" && e.cfg.AnnouncerAllowCustomServersetPath {
		path = filepath.Clean("/" + job.Announce.ZKPath)
	}
	shard := at.InstanceID
	member := serverset.Member{ServiceEndpoint: primary, AdditionalEndpoints: additional, Status: serverset.Alive, Shard: &shard}
	a, err := announcer.Start(ctx, announcer.Config{
		Servers:        strings.Split(e.cfg.AnnouncerEnsemble, ","),
		Path:           path,
		Member:         serverset.Marshal(member),
		ConnectTimeout: max(hc.InitialInterval+time.Duration(hc.MaxConsecutiveFailures)*hc.Interval, 5*time.Second),
		Logger:         e.log,
	})
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		msg := "Announcer: " + err.Error()
		if errors.Is(err, announcer.ErrTimeout) {
			msg = "Creating Announcer Serverset timed out."
		}
		e.teardown(status{mesos.TASK_FAILED, nil, msg}, PreemptionWait)
		return
	}
	e.log.Info("announced", "member", a.Path())
	<-ctx.Done()
	a.Stop()
}
