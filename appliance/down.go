package appliance

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// Down stops the appliance on cfg's data dir and returns once nothing of it
// is left: the supervisor has exited (released its lock) and no process
// carries the appliance's marker. It reports whether an appliance was running.
func Down(ctx context.Context, cfg *config.Config) (bool, error) {
	lockPath := cfg.Path("aurorabox.lock")
	running := isLocked(lockPath)
	// Room for every component's grace period plus the final sweep.
	wait := cfg.ShutdownGrace*6 + 10*time.Second

	if running {
		err := controlDo(ctx, cfg, "POST", "/v1/shutdown", nil)
		if err != nil {
			// No answer on the socket: signal the lock holder directly.
			pid := lockHolder(lockPath)
			if pid <= 0 {
				return true, fmt.Errorf("supervisor does not answer (%v) and the lock names no pid", err)
			}
			syscall.Kill(pid, syscall.SIGTERM)
		}
		if !waitUnlocked(ctx, lockPath, wait) {
			if pid := lockHolder(lockPath); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			if !waitUnlocked(ctx, lockPath, 5*time.Second) {
				return true, errors.New("the supervisor did not exit")
			}
		}
	}
	// Whatever a crashed or killed supervisor left behind.
	n := supervise.Sweep(supervise.Marker(cfg.DataDir), cfg.ShutdownGrace)
	if left := supervise.Find(supervise.Marker(cfg.DataDir)); len(left) > 0 {
		return running, fmt.Errorf("processes still running after down: %v", left)
	}
	return running || n > 0, nil
}

func waitUnlocked(ctx context.Context, path string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for isLocked(path) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
