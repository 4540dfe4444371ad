package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Procs starts the task's processes and reaps every child of the executor,
// including the orphans that the kernel hands it as child subreaper (a
// double-forked daemon of a task ends up here rather than with init, so
// teardown can still find and signal it).
//
// All children must be started through Start: the reaper waits for any
// child, so an os/exec Wait elsewhere in the process would race with it.
type Procs struct {
	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus // started by Start, not yet reaped
	sigc    chan os.Signal
	stop    chan struct{}
	orphans int // reaped orphans, for the record
}

// NewProcs makes the calling process a child subreaper and starts reaping.
func NewProcs() (*Procs, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become child subreaper: %w", err)
	}
	p := &Procs{waiting: map[int]chan syscall.WaitStatus{}, sigc: make(chan os.Signal, 1), stop: make(chan struct{})}
	signal.Notify(p.sigc, syscall.SIGCHLD)
	go p.reapLoop()
	return p, nil
}

// Close stops reaping.
func (p *Procs) Close() {
	signal.Stop(p.sigc)
	close(p.stop)
}

func (p *Procs) reapLoop() {
	for {
		select {
		case <-p.stop:
			return
		case <-p.sigc:
			p.reap()
		}
	}
}

// reap collects every exited child. It holds mu, so a child that Start is
// creating is registered before its exit can be collected.
func (p *Procs) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if c, ok := p.waiting[pid]; ok {
			delete(p.waiting, pid)
			c <- ws
			close(c)
		} else {
			p.orphans++
		}
	}
}

// Start starts a process (in its own session, as attr says) and returns
// its pid and a channel that yields its wait status once it has exited.
func (p *Procs) Start(argv0 string, argv []string, attr *os.ProcAttr) (int, <-chan syscall.WaitStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc, err := os.StartProcess(argv0, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	pid := proc.Pid
	proc.Release() // we reap it ourselves
	c := make(chan syscall.WaitStatus, 1)
	p.waiting[pid] = c
	return pid, c, nil
}

// Orphans lists the executor's children that it did not start: processes
// that were reparented to it.
func (p *Procs) Orphans() []int {
	self := os.Getpid()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, pid := range children(self) {
		if _, ours := p.waiting[pid]; !ours {
			out = append(out, pid)
		}
	}
	return out
}

// procStat is the parsed part of /proc/<pid>/stat that we need.
type procStat struct {
	state byte
	ppid  int
	sid   int    // session id
	start uint64 // start time, clock ticks since boot
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	// f[0] is field 3 of proc(5): state, ppid, pgrp, session, ... starttime (22).
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	sid, _ := strconv.Atoi(f[3])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStat{state: f[0][0], ppid: ppid, sid: sid, start: start}, nil
}

// startTicks is pid's start time in clock ticks since boot, or 0 if pid
// cannot be read.
func startTicks(pid int) uint64 {
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.start
}

// procID names one process for its lifetime: a pid, and the start time
// that tells it from a later process that reuses the pid.
type procID struct {
	pid   int
	start uint64 // 0: unknown, the pid alone is trusted
}

// current reports whether pid is still (or, as a zombie, was) the process
// that id names.
func (id procID) current() bool {
	st, err := readStat(id.pid)
	return err == nil && (id.start == 0 || st.start == id.start)
}

// running reports whether the process id names is alive: not gone, not a
// zombie, and not replaced by another process with the same pid.
func (id procID) running() bool {
	st, err := readStat(id.pid)
	return err == nil && st.state != 'Z' && st.state != 'X' && (id.start == 0 || st.start == id.start)
}

// userHZ is the unit of /proc's times (USER_HZ), 100 on Linux.
const userHZ = 100

// bootTime is when the system booted (btime in /proc/stat).
func bootTime() (time.Time, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, err
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, errors.New("no btime in /proc/stat")
}

// identify checks that the live process pid is the run that a checkpoint
// recorded as forked at forkedAt with start time start, and returns its
// identity. A checkpoint written before start times were recorded (start
// 0) is matched on what every run has: it leads its own session, and it
// started within a second or two of the record (btime has a resolution
// of one second).
func identify(pid int, start uint64, forkedAt time.Time) (procID, bool) {
	if pid <= 0 {
		return procID{}, false
	}
	st, err := readStat(pid)
	if err != nil || st.state == 'Z' || st.state == 'X' {
		return procID{}, false
	}
	if start != 0 {
		return procID{pid, st.start}, st.start == start
	}
	if st.sid != pid {
		return procID{}, false
	}
	boot, err := bootTime()
	if err != nil {
		return procID{}, false
	}
	started := boot.Add(time.Duration(st.start) * time.Second / userHZ)
	d := started.Sub(forkedAt)
	return procID{pid, st.start}, d > -2*time.Second && d < 2*time.Second
}

// allParents maps every live process to its parent.
func allParents() map[int]int {
	entries, _ := os.ReadDir("/proc")
	out := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil && st.state != 'Z' {
			out[pid] = st.ppid
		}
	}
	return out
}

// children lists the live (non-zombie) children of pid.
func children(pid int) []int {
	var out []int
	for c, pp := range allParents() {
		if pp == pid {
			out = append(out, c)
		}
	}
	return out
}

// Tree is pid and all its live descendants, parents first.
func Tree(pid int) []int {
	parents := allParents()
	kids := map[int][]int{}
	for c, pp := range parents {
		kids[pp] = append(kids[pp], c)
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, kids[out[i]]...)
	}
	return out
}

// SignalTree signals pid's process group and every descendant of pid.
func SignalTree(pid int, sig syscall.Signal) {
	syscall.Kill(-pid, sig) // the process leads its own session and group
	for _, p := range Tree(pid) {
		syscall.Kill(p, sig)
	}
}

// Output runs argv to completion in its own process group and returns its
// wait status and its combined stdout and stderr (at most maxOut bytes
// kept). When ctx ends first, the whole group gets SIGKILL and the error is
// ctx's. It is exec.Cmd's CombinedOutput for a process whose children the
// reaper collects.
func (p *Procs) Output(ctx context.Context, argv []string, dir string, env []string, cred *syscall.Credential, maxOut int) (syscall.WaitStatus, []byte, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer rd.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		wr.Close()
		return 0, nil, err
	}
	defer devnull.Close()
	attr := &os.ProcAttr{Dir: dir, Env: env, Files: []*os.File{devnull, wr, wr},
		Sys: &syscall.SysProcAttr{Setpgid: true, Credential: cred}}
	pid, wait, err := p.Start(argv[0], argv, attr)
	wr.Close()
	if err != nil {
		return 0, nil, err
	}
	outc := make(chan []byte, 1)
	go func() {
		var buf []byte
		chunk := make([]byte, 4096)
		for {
			n, err := rd.Read(chunk)
			if len(buf) < maxOut {
				buf = append(buf, chunk[:min(n, maxOut-len(buf))]...)
			}
			if err != nil {
				outc <- buf
				return
			}
		}
	}()
	select {
	case ws := <-wait:
		syscall.Kill(-pid, syscall.SIGKILL) // what it left in its group
		rd.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		return ws, <-outc, nil
	case <-ctx.Done():
		syscall.Kill(-pid, syscall.SIGKILL)
		<-wait
		rd.SetReadDeadline(time.Now())
		return 0, <-outc, ctx.Err()
	}
}
