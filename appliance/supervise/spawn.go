package supervise

import (
	"os/exec"
	"runtime"
	"sync"
)

// Pdeathsig fires when the *thread* that forked the child exits, not the
// process. Go may retire threads, so every child is forked from one goroutine
// locked to a thread that lives as long as the process.
type spawnReq struct {
	cmd  *exec.Cmd
	resp chan error
}

var (
	spawnOnce sync.Once
	spawnCh   chan spawnReq
)

func startPinned(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnCh = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive the children
			for r := range spawnCh {
				r.resp <- r.cmd.Start()
			}
		}()
	})
	resp := make(chan error, 1)
	spawnCh <- spawnReq{cmd, resp}
	return <-resp
}
