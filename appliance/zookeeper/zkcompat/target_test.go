package zkcompat

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Timing shared by both targets so that session semantics line up.
const (
	tickTime          = 250 * time.Millisecond
	minSessionTimeout = 500 * time.Millisecond
	maxSessionTimeout = 60 * time.Second
	startTimeout      = 30 * time.Second
)

// Target is one ZooKeeper server under test.
type Target struct {
	Name    string // "real" or "ours"
	Addr    string // host:port of the client port
	PID     int    // process id when the server runs in its own process, else 0
	DataDir string
	// Started is when the server process (or in-process server) was started,
	// and Ready when it first answered ruok with imok.
	Started, Ready time.Time
	logPath        string
	// restart stops the server abruptly where it can (SIGKILL for a
	// process) and starts it again on the same address and data dir.
	restart func(tb testing.TB)
}

// Restart restarts the server on the same address and data dir.
func (tg *Target) Restart(tb testing.TB) {
	tb.Helper()
	if tg.restart == nil {
		tb.Skipf("%s: restart not supported", tg.Name)
	}
	tg.restart(tb)
}

// TimeToImok is how long the server took from start to answering imok.
func (tg *Target) TimeToImok() time.Duration { return tg.Ready.Sub(tg.Started) }

// starter starts a target and registers its shutdown with tb.Cleanup. It
// skips or fails tb when the target cannot be started.
type starter struct {
	name  string
	start func(tb testing.TB) *Target
}

// targets is the list every suite runs against, in this order.
func targets() []starter {
	return []starter{
		{"real", startReal},
		{"ours", startOurs},
	}
}

// ---- real Apache ZooKeeper --------------------------------------------------

const requireRealEnv = "AURORABOX_REQUIRE_REALZK"

// realZK describes the installed Apache ZooKeeper.
type realZK struct {
	java      string
	javac     string // may be empty
	classpath string // server + client classpath
	zkCli     string // path of zkCli.sh, may be empty
}

// findRealZK locates java and the Debian ZooKeeper jars. The classpath can be
// overridden with AURORABOX_ZK_CLASSPATH.
func findRealZK() (*realZK, error) {
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, errors.New("java not found in PATH")
	}
	r := &realZK{java: java}
	if jc, err := exec.LookPath("javac"); err == nil {
		r.javac = jc
	}
	cp := os.Getenv("AURORABOX_ZK_CLASSPATH")
	if cp == "" {
		main := "/usr/share/java/zookeeper.jar"
		if _, err := os.Stat(main); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install zookeeper)", main)
		}
		// zookeeper.jar's manifest Class-Path names its dependencies,
		// including zookeeper-jute.jar. Add them explicitly anyway (javac
		// and some JVMs are picky) plus an slf4j binding to keep output quiet.
		parts := []string{main}
		for _, extra := range []string{"zookeeper-jute.jar", "slf4j-api.jar", "slf4j-nop.jar"} {
			p := filepath.Join("/usr/share/java", extra)
			if _, err := os.Stat(p); err == nil {
				parts = append(parts, p)
			}
		}
		cp = strings.Join(parts, ":")
	}
	r.classpath = cp
	for _, p := range []string{"/usr/share/zookeeper/bin/zkCli.sh", "/usr/bin/zkCli.sh"} {
		if _, err := os.Stat(p); err == nil {
			r.zkCli = p
			break
		}
	}
	return r, nil
}

// needReal returns the real ZooKeeper installation, or skips tb (fails it
// when AURORABOX_REQUIRE_REALZK=1) if it is not installed.
func needReal(tb testing.TB) *realZK {
	tb.Helper()
	r, err := findRealZK()
	if err != nil {
		missingReal(tb, err.Error())
	}
	return r
}

func missingReal(tb testing.TB, why string) {
	tb.Helper()
	msg := "real Apache ZooKeeper is not available: " + why +
		" (install the Debian packages zookeeper and default-jdk-headless; " +
		requireRealEnv + "=1 turns this skip into a failure)"
	if os.Getenv(requireRealEnv) == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
}

// startReal launches Apache ZooKeeper's standalone server on a free port of
// 127.0.0.1 with a temporary data dir, waits for imok and kills it at cleanup.
func startReal(tb testing.TB) *Target {
	tb.Helper()
	r := needReal(tb)
	dir := tb.TempDir()
	tg, stop, err := launchReal(r, dir, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stop() })
	tg.restart = func(tb testing.TB) {
		stop()
		_, port, _ := net.SplitHostPort(tg.Addr)
		p, _ := strconv.Atoi(port)
		ntg, nstop, err := launchReal(r, dir, p)
		if err != nil {
			stop = func() {}
			tb.Fatalf("restart: %v", err)
		}
		stop = nstop
		tg.PID, tg.Started, tg.Ready = ntg.PID, ntg.Started, ntg.Ready
	}
	return tg
}

// launchReal starts the real server with its files under dir and returns
// once it answers imok; stop kills it.
func launchReal(r *realZK, dir string, port int) (*Target, func(), error) {
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, nil, err
	}
	if port == 0 {
		var err error
		if port, err = freePortErr(); err != nil {
			return nil, nil, err
		}
	}
	cfg := fmt.Sprintf(`tickTime=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
minSessionTimeout=%d
maxSessionTimeout=%d
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
`, tickTime.Milliseconds(), dataDir, port, minSessionTimeout.Milliseconds(), maxSessionTimeout.Milliseconds())
	cfgPath := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, "server.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	// -Xmx1000m is what Apache's zkEnv.sh uses by default for the server.
	cmd := exec.Command(r.java, "-Xmx1000m",
		"-Dzookeeper.admin.enableServer=false",
		"-cp", r.classpath,
		"org.apache.zookeeper.server.ZooKeeperServerMain", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = dir
	tg := &Target{Name: "real", Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: dataDir, logPath: logPath}
	tg.Started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start real ZooKeeper: %w", err)
	}
	tg.PID = cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	if err := waitImok(tg.Addr, exited); err != nil {
		stop()
		return nil, nil, fmt.Errorf("real ZooKeeper did not become ready: %v\n%s", err, tailFile(logPath, 40))
	}
	tg.Ready = time.Now()
	if err := waitServing(tg.Addr); err != nil {
		stop()
		return nil, nil, fmt.Errorf("real ZooKeeper did not accept a session: %v\n%s", err, tailFile(logPath, 40))
	}
	return tg, stop, nil
}

// ---- helpers shared by starters --------------------------------------------

// freePortErr picks a currently free port on 127.0.0.1 (the usual small
// race between closing the probe and the server binding it is accepted).
func freePortErr() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitImok polls ruok until the server answers imok, the process exits
// (exited may be nil), or startTimeout passes.
func waitImok(addr string, exited <-chan error) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("server process exited before ready: %v", err)
		default:
		}
		out, err := fourLetter(addr, "ruok", time.Second)
		if err == nil && string(out) == "imok" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("ruok answered %q", out)
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no imok from %s within %v: %v", addr, startTimeout, last)
}

// waitServing opens sessions until the server accepts one (a session id
// other than 0), the process exits or startTimeout passes. Apache ZooKeeper
// answers ruok with imok as soon as it listens, before it has loaded its
// data and started serving: a session asked for in between is dropped
// ("ZooKeeperServer not running"), and a client's first request then fails
// with ConnectionLoss. So a target is ready only once it serves sessions.
// (A server that exits meanwhile refuses connections until the deadline.)
func waitServing(addr string) error {
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		rc, err := rawDial(addr, 10*time.Second)
		if err == nil {
			ok := rc.SessionID != 0
			rc.Close()
			if ok {
				return nil
			}
			err = errors.New("session refused (id 0)")
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no session from %s within %v: %v", addr, startTimeout, last)
}

// fourLetter sends a four-letter word and returns everything the server
// writes before closing the connection.
func fourLetter(addr, cmd string, timeout time.Duration) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// vmRSS reads the resident set size of pid in KiB from /proc.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fields := strings.Fields(line)
			if len(fields) >= 2 {
				return strconv.ParseInt(fields[1], 10, 64)
			}
		}
	}
	return 0, errors.New("VmRSS not found")
}

// parseKV parses "key<sep>value" lines (mntr uses a tab, conf uses '=').
func parseKV(out []byte, sep string) map[string]string {
	m := map[string]string{}
	for _, line := range bytes.Split(out, []byte("\n")) {
		k, v, ok := strings.Cut(strings.TrimRight(string(line), "\r"), sep)
		if ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}
