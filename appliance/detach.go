package appliance

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// ReadyFDVar tells a detached `up` which inherited descriptor to report
// readiness on: one line, "ok" or "error: <message>".
const ReadyFDVar = "AURORABOX_READY_FD"

// Detach runs `exe args...` (an `up` without --detach) as a daemon in its own
// session, with its output in logs/aurorabox.log, and waits until it reports
// that every component is ready, or why it is not.
func Detach(cfg *config.Config, exe string, args []string, timeout time.Duration) error {
	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Path("logs"), 0o700); err != nil {
		return fmt.Errorf("logs dir: %w", err)
	}
	logPath := cfg.Path("logs", "aurorabox.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("supervisor log: %w", err)
	}
	defer log.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), ReadyFDVar+"=3")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start supervisor: %w", err)
	}
	w.Close()
	go cmd.Wait() // reap it if it dies while we wait

	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		done <- result{strings.TrimSpace(line), err}
	}()
	select {
	case res := <-done:
		switch {
		case res.line == "ok":
			return nil
		case strings.HasPrefix(res.line, "error: "):
			return errors.New(strings.TrimPrefix(res.line, "error: "))
		default:
			return fmt.Errorf("supervisor exited during startup; see %s", logPath)
		}
	case <-time.After(timeout):
		return fmt.Errorf("supervisor (pid %d) not ready after %s; see %s", cmd.Process.Pid, timeout, logPath)
	}
}

// ReadyReporter returns the Ready callback for a detached `up`, or nil when
// this process was not started by Detach.
func ReadyReporter() func(error) {
	fd, err := strconv.Atoi(os.Getenv(ReadyFDVar))
	if err != nil || fd < 3 {
		return nil
	}
	os.Unsetenv(ReadyFDVar)
	f := os.NewFile(uintptr(fd), "ready")
	return func(err error) {
		if err == nil {
			io.WriteString(f, "ok\n")
		} else {
			// One line: the parent prints it as the error.
			io.WriteString(f, "error: "+strings.ReplaceAll(err.Error(), "\n", " ")+"\n")
		}
		f.Close()
	}
}
