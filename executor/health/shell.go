package health

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TimeoutReason is the failure reason of a shell check that timed out.
const TimeoutReason = "Health check timed out."

// maxOutput bounds the command output kept for the failure reason.
const maxOutput = 4096

// ShellOptions say how ShellProbe runs the command.
type ShellOptions struct {
	// Dir is the working directory ("" = the executor's).
	Dir string
	// Env is the environment; nil means the executor's own (as Aurora,
	// whose check inherits it).
	Env []string
	// Credential, if set, runs the command as that user/group: the job's
	// role user unless the executor has --nosetuid-health-checks.
	Credential *syscall.Credential
	// Timeout kills the command (its whole process group) when exceeded;
	// non-positive means no timeout of its own (ctx still bounds it).
	Timeout time.Duration
}

// ShellProbe performs one shell health check, as Aurora's ShellHealthCheck:
// /bin/bash -c command, stdout and stderr captured together. Exit 0 is
// healthy. Otherwise the reason is
//
//	Command '<command>' returned non-zero exit status 3 with output '<output>'
//
// (the status is -N when killed by signal N, as Python's returncode; the
// output is cut at 4 KiB), "Health check timed out." after opts.Timeout,
// or "OSError: <error>" when the command cannot be started.
//
// The command runs in its own process group. When it times out (or ctx is
// done) the whole group is killed with SIGKILL; the group is also killed
// once the shell has exited (before the shell is reaped, so the group id
// cannot have been reused), so a check leaves no background processes
// behind (Aurora's subprocess only killed the shell).
//
// Like os/exec, ShellProbe relies on reaping its own child: in a process
// that reaps arbitrary children (wait(-1), as a subreaper does), run the
// command through that reaper instead and use ShellProbe's wording.
func ShellProbe(ctx context.Context, command string, opts ShellOptions) (ok bool, reason string) {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	out := &capped{max: maxOutput}
	cmd := exec.Command("/bin/bash", "-c", command)
	cmd.Dir = opts.Dir
	cmd.Env = opts.Env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: opts.Credential}
	// Once the shell is gone, stop waiting for processes that escaped the
	// group and still hold the output pipe.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return false, "OSError: " + startError(err)
	}

	// Kill the group when ctx is done (the timeout included). All kills
	// happen before the shell is reaped, so that its pid, which is the
	// group id, cannot have been reused by then.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			killGroup(cmd.Process.Pid)
		case <-stop:
		}
	}()
	waitExited(cmd.Process.Pid)
	close(stop)
	<-stopped
	killGroup(cmd.Process.Pid)
	err := cmd.Wait()

	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return false, TimeoutReason
	}
	if ctx.Err() != nil {
		return false, "Health check cancelled: " + ctx.Err().Error()
	}
	st := cmd.ProcessState
	if st == nil {
		return false, "OSError: " + err.Error()
	}
	if st.Success() {
		return true, ""
	}
	return false, fmt.Sprintf("Command '%s' returned non-zero exit status %d with output '%s'",
		command, exitStatus(st.Sys()), out.String())
}

// killGroup sends SIGKILL to the process group pgid.
func killGroup(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitExited blocks until the process has exited, leaving it unreaped.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// exitStatus is Python's returncode: the exit code, or -signal.
func exitStatus(sys any) int {
	ws, ok := sys.(syscall.WaitStatus)
	if !ok {
		return -1
	}
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// startError is the cause of a failed start, without Go's "fork/exec
// /bin/bash: " wrapper.
func startError(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// capped keeps the first max bytes written to it and drops the rest
// (reporting them written, so the command never sees a write error).
type capped struct {
	max       int
	buf       []byte
	truncated bool
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - len(c.buf)
	if len(p) > room {
		c.buf = append(c.buf, p[:max(room, 0)]...)
		c.truncated = true
	} else {
		c.buf = append(c.buf, p...)
	}
	return len(p), nil
}

func (c *capped) String() string {
	if c.truncated {
		return string(c.buf) + "..."
	}
	return string(c.buf)
}
