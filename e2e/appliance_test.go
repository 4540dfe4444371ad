//go:build e2e

// Package e2e starts whole appliances from the built binary ($AURORABOX_BIN,
// set by `make e2e`) on random ports and temp data dirs, and checks them with
// independent tools: curl, jq and bash.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

func bin(t testing.TB) string {
	t.Helper()
	b := os.Getenv("AURORABOX_BIN")
	if b == "" {
		t.Fatal("AURORABOX_BIN is not set; run `make e2e`")
	}
	return b
}

type result struct {
	stdout, stderr string
	code           int
}

func run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// cluster is one appliance on its own data dir and free ports.
type cluster struct {
	t   testing.TB
	dir string
}

func newCluster(t testing.TB) *cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "abe2e")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t, dir}
	t.Cleanup(func() {
		c.run("down")
		if left := supervise.Find(supervise.Marker(dir)); len(left) > 0 {
			t.Errorf("processes left after down: %v", left)
		}
		os.RemoveAll(dir)
	})
	return c
}

func (c *cluster) run(args ...string) result {
	return run(c.t, []string{"AURORABOX_DATA_DIR=" + c.dir, "AURORABOX_PORTS=auto"}, args...)
}

func (c *cluster) up() {
	c.t.Helper()
	if r := c.run("up", "--detach"); r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(c.dir, "logs", "aurorabox.log"))
		c.t.Fatalf("up --detach: exit %d\n%s%s\nsupervisor log:\n%s", r.code, r.stdout, r.stderr, log)
	}
}

func (c *cluster) status() *status.Appliance {
	c.t.Helper()
	r := c.run("status", "--json")
	var st status.Appliance
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		c.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return &st
}

func (c *cluster) component(name string) status.Component {
	for _, comp := range c.status().Components {
		if comp.Name == name {
			return comp
		}
	}
	c.t.Fatalf("no component %s", name)
	return status.Component{}
}

// jq runs the real jq over the status JSON; -e makes false/null fail.
func jq(t *testing.T, input, filter string) {
	t.Helper()
	cmd := exec.Command("jq", "-e", filter)
	cmd.Stdin = strings.NewReader(input)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("jq %s: %v %s\ninput: %s", filter, err, out, input)
	}
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUpStatusLogsDown(t *testing.T) {
	c := newCluster(t)
	c.up()
	r := c.run("status", "--json")
	if r.code != 0 {
		t.Fatalf("status exit %d: %s", r.code, r.stdout)
	}
	jq(t, r.stdout, `.version == 1 and .running and .healthy and .supervisor.ready`)
	jq(t, r.stdout, `[.components[].name] == ["zookeeper", "master", "agent", "scheduler", "observer"]`)
	jq(t, r.stdout, `.isolation == "cgroups-v1" or .isolation == "cgroups-v2" or (.isolation == "none" and (.isolation_reason | length) > 0)`)
	jq(t, r.stdout, `.components[] | .health == "healthy" and .pid > 0 and .restarts == 0 and (.address | test("^127\\.0\\.0\\.1:[0-9]+$"))`)
	if h := c.run("status"); h.code != 0 || !strings.Contains(h.stdout, "agent") || !strings.Contains(h.stdout, "healthy") || !strings.Contains(h.stdout, "task isolation: ") {
		t.Fatalf("status: %d %s", h.code, h.stdout)
	}

	// The env file is valid shell and names the live master.
	master := "http://" + c.component("master").Address
	out, err := exec.Command("bash", "-c", `. "$1/env" && echo "$AURORABOX_MASTER_URL $AURORA_CONFIG_ROOT"`, "x", c.dir).Output()
	if err != nil || strings.TrimSpace(string(out)) != master+" "+c.dir {
		t.Fatalf("env: %q %v", out, err)
	}
	cj, _ := os.ReadFile(filepath.Join(c.dir, "clusters.json"))
	jq(t, string(cj), `.[0] | .name == "devcluster" and .scheduler_zk_path == "/aurora/scheduler" and .auth_mechanism == "UNAUTHENTICATED" and .slave_run_directory == "latest" and .slave_root == "`+c.dir+`/mesos"`)

	// curl and jq against the master: the agent registered, with Mesos' key names.
	state, err := exec.Command("curl", "-fsS", master+"/master/state").Output()
	if err != nil {
		t.Fatalf("curl /master/state: %v", err)
	}
	jq(t, string(state), `.version == "1.1.0" and .build_user == "aurorabox" and (.slaves | length) == 1 and .slaves[0].active and .activated_slaves == 1 and (.frameworks | length) == 1 and .frameworks[0].name == "Aurora"`)
	// On --ports auto, the agent offers the task ports up reserved and recorded.
	tp, _ := os.ReadFile(filepath.Join(c.dir, "task-ports"))
	jq(t, string(state), `.slaves[0].resources.ports == "[`+strings.TrimSpace(string(tp))+`]"`)
	if l := c.run("logs", "master"); l.code != 0 || !strings.Contains(l.stdout, "master | --- ") {
		t.Fatalf("logs: %d %q %s", l.code, l.stdout, l.stderr)
	}
	if l := c.run("logs", "nosuchrole"); l.code == 0 || !strings.Contains(l.stderr, `no log for "nosuchrole"`) {
		t.Fatalf("logs of an unknown role: %d %s", l.code, l.stderr)
	}

	if d := c.run("down"); d.code != 0 || !strings.Contains(d.stdout, "stopped") {
		t.Fatalf("down: %d %s %s", d.code, d.stdout, d.stderr)
	}
	if left := supervise.Find(supervise.Marker(c.dir)); len(left) != 0 {
		t.Fatalf("processes after down: %v", left)
	}
	if s := c.run("status", "--json"); s.code != 1 {
		t.Fatalf("status after down exits %d", s.code)
	} else {
		jq(t, s.stdout, `.running == false and .healthy == false`)
	}
}

func TestSecondUpRefused(t *testing.T) {
	c := newCluster(t)
	c.up()
	for _, args := range [][]string{{"up"}, {"up", "--detach"}} {
		r := c.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "already running on data dir "+c.dir) {
			t.Fatalf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	if !c.status().Healthy {
		t.Fatal("the first appliance suffered from the second up")
	}
}

func TestTwoClustersAtOnce(t *testing.T) {
	a, b := newCluster(t), newCluster(t)
	a.up()
	b.up()
	za, zb := a.component("master"), b.component("master")
	if za.Address == zb.Address || za.Health != status.Healthy || zb.Health != status.Healthy {
		t.Fatalf("a=%+v b=%+v", za, zb)
	}
	// Their agents offer task ports of their own, not both 31000-32000.
	pa, pb := a.taskPorts(), b.taskPorts()
	if pa[0] > pa[1] || pb[0] > pb[1] || pa[0] <= pb[1] && pb[0] <= pa[1] || pa[0] <= 32000 && 31000 <= pa[1] {
		t.Fatalf("task ports: %v and %v; want disjoint ranges outside 31000-32000", pa, pb)
	}
	// A restart offers the same ones again.
	b.run("down")
	b.up()
	if again := b.taskPorts(); again != pb {
		t.Fatalf("task ports %v after a restart, %v before", again, pb)
	}
}

// taskPorts is the ports range the cluster's agent offers, from the master.
func (c *cluster) taskPorts() [2]int {
	c.t.Helper()
	master := "http://" + c.component("master").Address
	out, err := exec.Command("bash", "-c", `curl -fsS "$1/master/state" | jq -r '.slaves[0].resources.ports'`, "x", master).Output()
	if err != nil {
		c.t.Fatalf("master state: %v", err)
	}
	var r [2]int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "[%d-%d]", &r[0], &r[1]); err != nil {
		c.t.Fatalf("ports resource %q: %v", out, err)
	}
	return r
}

// kill -9 of the agent: the supervisor restarts it, and it re-registers with
// the master under the agent id it checkpointed.
func TestComponentRestart(t *testing.T) {
	c := newCluster(t)
	c.up()
	ag := c.component("agent")
	master := "http://" + c.component("master").Address
	slaveID := func() string {
		out, _ := exec.Command("bash", "-c", `curl -fsS "$1/master/state" | jq -r '.slaves[0].id'`, "x", master).Output()
		return strings.TrimSpace(string(out))
	}
	before := slaveID()
	syscall.Kill(ag.PID, syscall.SIGKILL)
	waitFor(t, "agent restarted and healthy", 15*time.Second, func() bool {
		a := c.component("agent")
		return a.PID != ag.PID && a.Health == status.Healthy
	})
	if a := c.component("agent"); a.Restarts != 1 {
		t.Fatalf("restarts = %d", a.Restarts)
	}
	if after := slaveID(); after != before || before == "" {
		t.Fatalf("agent id %q before, %q after the restart", before, after)
	}
}

// kill -9 of the supervisor: its components die with it (Pdeathsig), and
// the next up starts cleanly on the same data dir.
func TestSupervisorKill9ThenUp(t *testing.T) {
	c := newCluster(t)
	c.up()
	st := c.status()
	masterPID := c.component("master").PID
	syscall.Kill(st.Supervisor.PID, syscall.SIGKILL)
	waitFor(t, "components to die with the supervisor", 10*time.Second, func() bool {
		return len(supervise.Find(supervise.Marker(c.dir))) == 0
	})
	if syscall.Kill(masterPID, 0) == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(masterPID) + "/stat"); !bytes.Contains(b, []byte(") Z")) {
			t.Fatalf("master %d survived", masterPID)
		}
	}
	c.up()
	if !c.status().Healthy {
		t.Fatal("not healthy after a second up")
	}
	// ZooKeeper outlived the other components, so the old scheduler closed
	// its session: the new one did not wait for its leadership to expire.
	log, _ := os.ReadFile(filepath.Join(c.dir, "logs", "scheduler.log"))
	starts := strings.Split(string(log), "aurorabox: starting scheduler")
	if last := starts[len(starts)-1]; len(starts) < 3 || strings.Contains(last, "waiting for the leader to go") {
		t.Fatalf("the restarted scheduler waited for the old one's ZooKeeper session:\n%s", last)
	}
}

// Foreground up: Ctrl-C (SIGINT) is an orderly shutdown with exit status 0.
func TestForegroundInterrupt(t *testing.T) {
	dir, _ := os.MkdirTemp("", "abe2e")
	defer os.RemoveAll(dir)
	cmd := exec.Command(bin(t), "up", "--ports", "auto", "--data-dir", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "up to be ready", 30*time.Second, func() bool { return strings.Contains(out.String(), "is up in") })
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("up after SIGINT: %v\n%s", err, out.String())
	}
	if left := supervise.Find(supervise.Marker(dir)); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
}

func TestInvalidConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aurorabox.yaml")
	os.WriteFile(cfg, []byte("cluster: ok\nmaster:\n  port: 99999\n"), 0o600)
	r := run(t, nil, "up", "--data-dir", dir)
	if r.code == 0 || !strings.Contains(r.stderr, cfg+":3: master.port: port 99999 out of range") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	// An unwritable data dir: a path below a regular file.
	r = run(t, nil, "up", "--data-dir", filepath.Join(cfg, "sub"))
	if r.code == 0 || !strings.Contains(r.stderr, "data dir") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// zkCli finds Apache ZooKeeper's own CLI (Debian package zookeeper); CI
// sets AURORABOX_REQUIRE_REALZK=1 so that a missing one fails.
func zkCli(t *testing.T) string {
	t.Helper()
	const p = "/usr/share/zookeeper/bin/zkCli.sh"
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("AURORABOX_REQUIRE_REALZK") == "1" {
			t.Fatalf("zkCli.sh not installed: %v", err)
		}
		t.Skip("zkCli.sh not installed (apt-get install zookeeper)")
	}
	return p
}

// The embedded ZooKeeper answers Apache's own zkCli.sh and bash's
// /dev/tcp, and a kill -9 of it loses no acknowledged write.
func TestEmbeddedZooKeeper(t *testing.T) {
	cli := zkCli(t)
	c := newCluster(t)
	c.up()
	zk := c.component("zookeeper")
	host, port, _ := strings.Cut(zk.Address, ":")
	zkcli := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-server", zk.Address}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("zkCli.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := zkcli("create", "/e2e", "durable"); !strings.Contains(out, "Created /e2e") {
		t.Fatalf("zkCli create: %s", out)
	}
	srvr, err := exec.Command("bash", "-c", `exec 3<>/dev/tcp/$1/$2; printf srvr >&3; cat <&3`, "x", host, port).Output()
	if err != nil || !strings.Contains(string(srvr), "Mode: standalone") {
		t.Fatalf("srvr over /dev/tcp: %v\n%s", err, srvr)
	}

	syscall.Kill(zk.PID, syscall.SIGKILL)
	waitFor(t, "zookeeper restarted and healthy", 15*time.Second, func() bool {
		z := c.component("zookeeper")
		return z.PID != zk.PID && z.Health == status.Healthy
	})
	if out := zkcli("get", "/e2e"); !strings.Contains(out, "\ndurable\n") {
		t.Fatalf("after kill -9, zkCli get /e2e:\n%s", out)
	}
	// The master registered for detection as Mesos does, and re-registered
	// after ZooKeeper's restart (its session survived it).
	out := zkcli("ls", "/mesos")
	if !strings.Contains(out, "json.info_") {
		t.Fatalf("zkCli ls /mesos:\n%s", out)
	}
	master := c.component("master").Address
	info, err := exec.Command("bash", "-c", `z=$("$1" -server "$2" ls /mesos | grep -o 'json.info_[0-9]*' | sort | head -1); "$1" -server "$2" get /mesos/$z | grep '^{' | jq -r .pid`, "x", cli, zk.Address).Output()
	if err != nil || strings.TrimSpace(string(info)) != "master@"+master {
		t.Fatalf("leader pid from ZooKeeper: %q %v (master at %s)", info, err, master)
	}
}

// up --agents 3 simulates three hosts: each agent on its own loopback
// address with its own rack, port slice and persistent id.
func TestSimulatedHosts(t *testing.T) {
	c := newCluster(t)
	if r := c.run("up", "--detach", "--agents", "3"); r.code != 0 {
		t.Fatalf("up --agents 3: %d %s %s", r.code, r.stdout, r.stderr)
	}
	master := "http://" + c.component("master").Address
	state := func() string {
		out, err := exec.Command("curl", "-fsS", master+"/master/state").Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		return string(out)
	}
	jq(t, state(), `[.slaves[].hostname] | sort == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]`)
	jq(t, state(), `[.slaves[].attributes.rack] | sort == ["r1", "r1", "r2"]`)
	jq(t, state(), `[.slaves[].resources.ports] | unique | length == 3`)
	ids := func() string {
		out, _ := exec.Command("bash", "-c", `curl -fsS "$1/master/state" | jq -c '[.slaves[] | {hostname, id}] | sort_by(.hostname)'`, "x", master).Output()
		return strings.TrimSpace(string(out))
	}
	before := ids()
	a2 := c.component("agent2")
	syscall.Kill(a2.PID, syscall.SIGKILL)
	waitFor(t, "agent2 restarted", 15*time.Second, func() bool {
		a := c.component("agent2")
		return a.PID != a2.PID && a.Health == status.Healthy
	})
	if after := ids(); after != before {
		t.Fatalf("agent ids changed across agent2's restart:\n%s\n%s", before, after)
	}
}

// chromium renders url headless and returns the DOM after scripts ran.
func chromium(t *testing.T, url string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("AURORABOX_REQUIRE_CHROMIUM") == "1" {
			t.Fatal("chromium not installed")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	// The background-networking flags keep Chromium from dialling out,
	// which a closed CI network answers slowly.
	out, err := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url).Output()
	if err != nil {
		t.Fatalf("chromium %s: %v", url, err)
	}
	return string(out)
}

// The master's web page renders in a real browser with the agent and the
// Aurora scheduler's framework.
func TestMasterPageInChromium(t *testing.T) {
	c := newCluster(t)
	c.up()
	master := c.component("master").Address
	dom := chromium(t, "http://"+master+"/")
	for _, want := range []string{"Mesos master", "master@" + master, `<table id="agents">`, "127.0.0.1", "<td>Aurora</td>", "No tasks.", "/master/state"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q:\n%s", want, dom)
		}
	}
}

// `up 2>&1 | head -n 2`: the supervisor's output pipe closes while it runs.
// Its next write (the log line about a component it restarts) must not kill
// it by SIGPIPE: it keeps supervising and the component is healthy again.
func TestSupervisorSurvivesClosedOutput(t *testing.T) {
	dir, err := os.MkdirTemp("", "abe2e")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t, dir}
	t.Cleanup(func() {
		c.run("down")
		os.RemoveAll(dir)
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin(t), "up", "--ports", "auto", "--data-dir", dir)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// Read as `head` would until up is ready, then hang up.
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(out.String(), "is up in") {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("up's output ended before it was ready: %v\n%s", err, out.String())
		}
		out.Write(buf[:n])
	}
	r.Close()
	obs := c.component("observer")
	syscall.Kill(obs.PID, syscall.SIGKILL) // the supervisor logs the restart
	waitFor(t, "observer restarted and healthy", 20*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("up exited after its output pipe closed: %v", err)
		default:
		}
		o := c.component("observer")
		return o.PID != obs.PID && o.Health == status.Healthy
	})
	if st := c.status(); !st.Healthy || st.Supervisor.PID != cmd.Process.Pid {
		t.Fatalf("after the restart: healthy %v, supervisor %+v", st.Healthy, st.Supervisor)
	}
}
