package observer

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aurorabox/aurorabox/appliance/sandboxfs"
	"github.com/aurorabox/aurorabox/executor/planner"
	"github.com/aurorabox/aurorabox/observer/observerapi"
)

const (
	clockTicks = 100 // USER_HZ: Linux reports CPU times in 1/100 s everywhere we read them
	// A rate needs samples at least this far apart; nearer ones reuse it.
	minRateWindow = time.Second
	// How far a run's process may have started after its fork was
	// recorded before we take its pid for a recycled one.
	pidStartSlack = 30 * time.Second
	maxDiskWalk   = 200000 // entries counted per sandbox
)

type procInfo struct {
	pid, ppid, sid int
	cpuTicks       uint64 // utime+stime+cutime+cstime
	userTicks      uint64
	sysTicks       uint64
	rssPages       int64
	threads        int
	startTicks     uint64 // since boot
}

type cpuPoint struct {
	at   time.Time
	secs float64
	rate float64
	used time.Time // last time a caller asked for it
}

type diskEntry struct {
	at    time.Time
	bytes int64
}

// sampler reads /proc and cgroups. Its caches are keyed by what asks.
type sampler struct {
	proc, cgroup string
	now          func() time.Time
	pageSize     int64

	mu      sync.Mutex
	table   map[int]procInfo
	tableAt time.Time
	btime   int64
	points  map[string]cpuPoint
	disk    map[string]diskEntry
	du      func(sandbox *os.Root) int64 // walkDisk; tests replace it
}

func newSampler(proc, cgroup string, now func() time.Time) *sampler {
	return &sampler{proc: proc, cgroup: cgroup, now: now, pageSize: int64(os.Getpagesize()),
		points: map[string]cpuPoint{}, disk: map[string]diskEntry{}, du: walkDisk}
}

// parseStat parses /proc/<pid>/stat.
func parseStat(b []byte) (procInfo, bool) {
	var p procInfo
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return p, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return p, false
	}
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state) of proc(5).
	if len(f) < 22 {
		return p, false
	}
	num := func(field int) uint64 {
		v, _ := strconv.ParseUint(f[field-3], 10, 64)
		return v
	}
	inum := func(field int) int64 {
		v, _ := strconv.ParseInt(f[field-3], 10, 64)
		return v
	}
	p.pid = pid
	p.ppid, p.sid = int(inum(4)), int(inum(6))
	p.userTicks, p.sysTicks = num(14)+num(16), num(15)+num(17)
	p.cpuTicks = p.userTicks + p.sysTicks
	p.threads = int(inum(20))
	p.startTicks = num(22)
	p.rssPages = inum(24)
	return p, true
}

// procs returns the process table, re-read at most once per second.
func (s *sampler) procs() map[int]procInfo {
	now := s.now()
	if d := now.Sub(s.tableAt); s.table != nil && d >= 0 && d < time.Second {
		return s.table
	}
	table := map[int]procInfo{}
	entries, _ := os.ReadDir(s.proc)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.proc, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if p, ok := parseStat(b); ok && p.pid == pid {
			table[pid] = p
		}
	}
	if s.btime == 0 {
		s.btime = readBootTime(filepath.Join(s.proc, "stat"))
	}
	s.table, s.tableAt = table, now
	return table
}

func readBootTime(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// livePID returns pid if it is still the run that the checkpoint forked:
// a session leader (each run is setsid) that started within pidStartSlack
// of the run's fork. Anything else is a recycled pid.
func (s *sampler) livePID(table map[int]procInfo, pid int, forked time.Time) bool {
	p, ok := table[pid]
	if !ok || p.sid != pid {
		return false
	}
	if s.btime == 0 || forked.IsZero() {
		return true
	}
	started := time.Unix(s.btime, 0).Add(time.Duration(p.startTicks) * time.Second / clockTicks)
	return started.Before(forked.Add(pidStartSlack)) && started.After(forked.Add(-pidStartSlack))
}

// tree returns pid and its descendants, and the rest of its session.
func tree(table map[int]procInfo, pid int) []int {
	kids := map[int][]int{}
	for _, p := range table {
		kids[p.ppid] = append(kids[p.ppid], p.pid)
	}
	seen := map[int]bool{pid: true}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		for _, k := range kids[out[i]] {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	for _, p := range table {
		if p.sid == pid && !seen[p.pid] {
			seen[p.pid] = true
			out = append(out, p.pid)
		}
	}
	return out
}

// sum adds up the usage of pids (rates not set).
func (s *sampler) sum(table map[int]procInfo, pids []int) (u observerapi.Usage, cpuSecs float64) {
	var ticks uint64
	for _, pid := range pids {
		p := table[pid]
		ticks += p.cpuTicks
		u.User += float64(p.userTicks) / clockTicks
		u.System += float64(p.sysTicks) / clockTicks
		u.RAM += p.rssPages * s.pageSize
		u.Threads += p.threads
	}
	return u, float64(ticks) / clockTicks
}

// rate turns a cumulative CPU-seconds reading into cores busy, against the
// previous reading under key (or, first, against since).
func (s *sampler) rate(key string, secs float64, since time.Time) float64 {
	now := s.now()
	p, ok := s.points[key]
	if ok {
		d := now.Sub(p.at)
		if d >= 0 && d < minRateWindow {
			p.used = now
			s.points[key] = p
			return p.rate
		}
		if d >= minRateWindow && secs >= p.secs {
			r := (secs - p.secs) / d.Seconds()
			s.points[key] = cpuPoint{at: now, secs: secs, rate: r, used: now}
			return r
		}
	}
	var r float64
	if d := now.Sub(since); !since.IsZero() && d > 0 {
		r = secs / d.Seconds()
	}
	s.points[key] = cpuPoint{at: now, secs: secs, rate: r, used: now}
	// Forget what nobody asked about for a while.
	for k, p := range s.points {
		if now.Sub(p.used) > 10*time.Minute {
			delete(s.points, k)
		}
	}
	return r
}

// liveRuns returns the pids of a task's runs that are forked or running,
// with when the runs were forked.
func (s *sampler) liveRuns(table map[int]procInfo, t *task) map[string]int {
	out := map[string]int{}
	for _, p := range t.Snapshot.Processes {
		for _, r := range p.Runs {
			if r.State != planner.Forked && r.State != planner.Running {
				continue
			}
			key := runKey(p.Name, r.Run)
			if pid := t.PIDs[key]; pid > 0 && s.livePID(table, pid, r.ForkTime) {
				out[key] = pid
			}
		}
	}
	return out
}

// runUsage is the usage of one run's process tree; ok is false when the
// run is not alive.
func (s *sampler) runUsage(t *task, process string, run planner.RunStatus) (observerapi.Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if run.State != planner.Forked && run.State != planner.Running {
		return observerapi.Usage{}, false
	}
	table := s.procs()
	pid := t.PIDs[runKey(process, run.Run)]
	if pid <= 0 || !s.livePID(table, pid, run.ForkTime) {
		return observerapi.Usage{}, false
	}
	u, secs := s.sum(table, tree(table, pid))
	since := run.StartTime
	if since.IsZero() {
		since = run.ForkTime
	}
	u.CPU = s.rate("run\x00"+t.ID+"\x00"+runKey(process, run.Run)+"\x00"+strconv.Itoa(pid), secs, since)
	return u, true
}

// taskUsage is the usage of the task's container (or of its live runs) and
// its sandbox's disk usage.
func (s *sampler) taskUsage(t *task, diskTTL time.Duration) observerapi.TaskUsage {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tu observerapi.TaskUsage
	tu.Disk = s.diskUsage(t, diskTTL)
	if !t.Active {
		return tu
	}
	table := s.procs()
	live := s.liveRuns(table, t)
	if len(live) == 0 {
		return tu
	}
	var secs float64
	for _, pid := range live {
		if u, cs, ok := s.cgroupUsage(pid, t.ContainerID); ok {
			tu.Usage, secs, tu.Source = u, cs, "cgroup"
			break
		}
	}
	if tu.Source == "" {
		seen := map[int]bool{}
		var pids []int
		for _, pid := range live {
			for _, p := range tree(table, pid) {
				if !seen[p] {
					seen[p] = true
					pids = append(pids, p)
				}
			}
		}
		tu.Usage, secs = s.sum(table, pids)
		tu.Source = "proc"
	}
	tu.CPU = s.rate("task\x00"+t.ID+"\x00"+tu.Source, secs, t.Header.LaunchTime)
	return tu
}

// cgroupUsage reads the usage of pid's cgroup if that cgroup is the
// container's (the agent names it after the container id).
func (s *sampler) cgroupUsage(pid int, containerID string) (u observerapi.Usage, cpuSecs float64, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.proc, strconv.Itoa(pid), "cgroup"))
	if err != nil || containerID == "" {
		return u, 0, false
	}
	v1 := map[string]string{} // controller → directory
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") || strings.Contains(parts[2], "/..") {
			continue
		}
		path := filepath.Clean(parts[2])
		if filepath.Base(path) != containerID {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			dir := filepath.Join(s.cgroup, path)
			if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err == nil {
				return readV2(dir)
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[c] = filepath.Join(s.cgroup, parts[1], path)
		}
	}
	if v1["cpuacct"] == "" || v1["memory"] == "" {
		return u, 0, false
	}
	return readV1(v1)
}

// keyed reads "key value" lines.
func keyed(path string) map[string]int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

func single(path string) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n, err == nil
}

func readV2(dir string) (u observerapi.Usage, cpuSecs float64, ok bool) {
	cpu := keyed(filepath.Join(dir, "cpu.stat"))
	if cpu == nil {
		return u, 0, false
	}
	u.User = float64(cpu["user_usec"]) / 1e6
	u.System = float64(cpu["system_usec"]) / 1e6
	cpuSecs = float64(cpu["usage_usec"]) / 1e6
	if mem := keyed(filepath.Join(dir, "memory.stat")); mem != nil {
		u.RAM = mem["anon"] + mem["file_mapped"]
	} else if n, ok := single(filepath.Join(dir, "memory.current")); ok {
		u.RAM = n
	}
	if n, ok := single(filepath.Join(dir, "pids.current")); ok {
		u.Threads = int(n)
	}
	return u, cpuSecs, true
}

func readV1(dirs map[string]string) (u observerapi.Usage, cpuSecs float64, ok bool) {
	st := keyed(filepath.Join(dirs["cpuacct"], "cpuacct.stat"))
	if st == nil {
		return u, 0, false
	}
	u.User = float64(st["user"]) / clockTicks
	u.System = float64(st["system"]) / clockTicks
	cpuSecs = u.User + u.System
	if ns, ok := single(filepath.Join(dirs["cpuacct"], "cpuacct.usage")); ok {
		cpuSecs = float64(ns) / 1e9
	}
	if mem := keyed(filepath.Join(dirs["memory"], "memory.stat")); mem != nil {
		u.RAM = mem["total_rss"] + mem["total_mapped_file"]
	}
	if dirs["pids"] != "" {
		if n, ok := single(filepath.Join(dirs["pids"], "pids.current")); ok {
			u.Threads = int(n)
		}
	}
	return u, cpuSecs, true
}

// diskUsage is the bytes allocated under the task's sandbox, walked at most
// once per ttl. Symlinks are not followed.
func (s *sampler) diskUsage(t *task, ttl time.Duration) int64 {
	now := s.now()
	key := t.ID + "\x00" + t.RunDir
	if e, ok := s.disk[key]; ok {
		if d := now.Sub(e.at); d >= 0 && d < ttl {
			return e.bytes
		}
	}
	var total int64
	if root, err := t.sandbox(); err == nil {
		total = s.du(root)
		root.Close()
	}
	s.disk[key] = diskEntry{at: now, bytes: total}
	for k, e := range s.disk {
		if now.Sub(e.at) > 10*time.Minute {
			delete(s.disk, k)
		}
	}
	return total
}

// walkDisk sums the blocks allocated under a sandbox without following
// symlinks, as du does; a sparse file counts only what it uses. Directories
// are opened beneath the sandbox, so one swapped for a symlink or a FIFO
// while we walk is not followed or waited on.
func walkDisk(root *os.Root) int64 {
	var total int64
	n := 0
	dirs := []string{"."}
	for len(dirs) > 0 && n <= maxDiskWalk {
		dir := dirs[len(dirs)-1]
		dirs = dirs[:len(dirs)-1]
		d, fi, err := sandboxfs.Open(root, dir, sandboxfs.Dir)
		if err != nil {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		n++
		var entries []fs.DirEntry
		if left := maxDiskWalk - n; left > 0 {
			entries, _ = d.ReadDir(left)
		}
		d.Close()
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, path.Join(dir, e.Name()))
				continue
			}
			n++
			if fi, err := e.Info(); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					total += st.Blocks * 512
				}
			}
		}
	}
	return total
}
