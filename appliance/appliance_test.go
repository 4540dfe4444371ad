package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/status"
	"github.com/aurorabox/aurorabox/appliance/supervise"
)

// With FAKE_COMPONENT set the test binary is a component: it logs a line,
// starts a grandchild in its own session (like a task), and serves TCP.
func TestMain(m *testing.M) {
	if addr := os.Getenv("FAKE_COMPONENT"); addr != "" {
		fmt.Println("fake component listening on", addr)
		task := exec.Command("sleep", "300")
		task.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		task.Start()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(1)
			}
			c.Close()
		}
	}
	os.Exit(m.Run())
}

// fakeComponents stands in for the real roles: two TCP servers on the
// configured zookeeper and master ports.
func fakeComponents(cfg *config.Config, exe string) []Component {
	self, _ := os.Executable()
	var out []Component
	for _, c := range []struct {
		name string
		port int
	}{{"zookeeper", cfg.ZooKeeper.Port}, {"master", cfg.Master.Port}} {
		addr := cfg.Addr(c.port)
		s := supervise.Spec{
			Name: c.name, Path: self, Env: append(childEnv(cfg), "FAKE_COMPONENT="+addr),
			Log: cfg.Path("logs", c.name+".log"), Addr: addr, ReadyTimeout: 5 * time.Second, StopGrace: time.Second,
			Probe: func(ctx context.Context) error {
				var d net.Dialer
				conn, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					conn.Close()
				}
				return err
			},
		}
		url := ""
		if c.name == "master" {
			url = "http://" + addr
		}
		out = append(out, Component{Spec: s, URL: url})
	}
	return out
}

func testConfig(t *testing.T) *config.Config {
	t.Helper()
	// Short paths: the control socket path must fit in sun_path.
	dir, err := os.MkdirTemp("", "abx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg, err := config.Load(nil, []string{"AURORABOX_DATA_DIR=" + dir, "AURORABOX_PORTS=auto", "AURORABOX_SHUTDOWN_GRACE=1s"}, "/")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type running struct {
	cancel context.CancelFunc
	done   chan error
}

// startUp runs Up in the background and waits until it is ready.
func startUp(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan error, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- Up(ctx, cfg, UpOptions{Components: fakeComponents, Version: "test", Ready: func(err error) { ready <- err }})
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("up: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("up not ready")
	}
	return r
}

func TestUpStatusDown(t *testing.T) {
	cfg := testConfig(t)
	r := startUp(t, cfg)
	ctx := context.Background()

	st, err := GetStatus(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || !st.Healthy || st.Version != status.Version || st.Supervisor.PID != os.Getpid() || !st.Supervisor.Ready {
		t.Fatalf("status %+v", st)
	}
	if len(st.Components) != 2 || st.Components[0].Name != "zookeeper" || st.Components[1].Name != "master" {
		t.Fatalf("components %+v", st.Components)
	}
	for _, c := range st.Components {
		if c.PID == 0 || c.Health != status.Healthy || c.Address == "" || !strings.HasSuffix(c.Log, c.Name+".log") {
			t.Fatalf("component %+v", c)
		}
	}
	// The JSON keys are the documented, stable interface.
	b, _ := json.Marshal(st)
	for _, key := range []string{`"version":1`, `"running":true`, `"healthy":true`, `"data_dir"`, `"supervisor":{"pid"`, `"components":[{"name":"zookeeper","pid"`, `"address"`, `"health":"healthy"`, `"uptime_seconds"`, `"restarts":0`, `"log"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("status JSON lacks %s: %s", key, b)
		}
	}

	// env and clusters.json name the ports that were actually picked.
	env, _ := os.ReadFile(cfg.Path("env"))
	zk := st.Components[0].Address
	for _, want := range []string{"export AURORABOX_ZK='" + zk + "'", "export AURORABOX_MASTER_URL='http://" + st.Components[1].Address + "'", "export AURORA_CONFIG_ROOT='" + cfg.DataDir + "'"} {
		if !strings.Contains(string(env), want) {
			t.Errorf("env lacks %q:\n%s", want, env)
		}
	}
	var clusters []Cluster
	cj, _ := os.ReadFile(cfg.Path("clusters.json"))
	if err := json.Unmarshal(cj, &clusters); err != nil || len(clusters) != 1 {
		t.Fatalf("clusters.json %s: %v", cj, err)
	}
	if c := clusters[0]; c.Name != "devcluster" || net.JoinHostPort(c.ZK, fmt.Sprint(c.ZKPort)) != zk || c.SchedulerZKPath != "/aurora/scheduler" || c.SlaveRunDirectory != "latest" || c.SlaveRoot != cfg.Path("mesos") {
		t.Fatalf("clusters.json %+v", c)
	}

	// Each component's output lands in its log; `logs` prefixes the role.
	var out bytes.Buffer
	if err := Logs(ctx, cfg, &out, LogOptions{Tail: -1}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "zookeeper | fake component listening on "+zk) || !strings.Contains(out.String(), "master    | fake component") {
		t.Fatalf("logs:\n%s", out.String())
	}
	if err := Logs(ctx, cfg, &out, LogOptions{Roles: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `no log for "nope"`) {
		t.Fatalf("unknown role: %v", err)
	}

	marker := supervise.Marker(cfg.DataDir)
	// 2 components, each with a task-like grandchild in its own session.
	if n := len(supervise.Find(marker)); n != 4 {
		t.Fatalf("expected 4 marked processes, found %d", n)
	}
	wasRunning, err := Down(ctx, cfg)
	if err != nil || !wasRunning {
		t.Fatalf("down: %v %v", wasRunning, err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("up returned %v", err)
	}
	r.done <- nil // for the cleanup
	if left := supervise.Find(marker); len(left) != 0 {
		t.Fatalf("processes left after down: %v", left)
	}
	if st, _ := GetStatus(ctx, cfg); st.Running || st.Healthy {
		t.Fatalf("status after down: %+v", st)
	}
	if wasRunning, err := Down(ctx, cfg); err != nil || wasRunning {
		t.Fatalf("second down: %v %v", wasRunning, err)
	}
}

func TestLockRefusesSecondUp(t *testing.T) {
	cfg := testConfig(t)
	startUp(t, cfg)
	second := *cfg
	err := Up(context.Background(), &second, UpOptions{Components: fakeComponents})
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.PID != os.Getpid() {
		t.Fatalf("second up: %v", err)
	}
	if !strings.Contains(err.Error(), "already running on data dir "+cfg.DataDir) {
		t.Fatalf("message: %v", err)
	}
	// It says what holds the dir (a foreground `make run` is easy to
	// forget) and how to stop it.
	for _, want := range []string{"pid " + strconv.Itoa(os.Getpid()) + ": " + os.Args[0], "make run", "aurorabox down", "Ctrl-C"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("message %q lacks %q", err, want)
		}
	}
}

func TestTwoAppliancesWithAutoPorts(t *testing.T) {
	a, b := testConfig(t), testConfig(t)
	startUp(t, a)
	startUp(t, b)
	sa, _ := GetStatus(context.Background(), a)
	sb, _ := GetStatus(context.Background(), b)
	if !sa.Healthy || !sb.Healthy {
		t.Fatalf("not both healthy: %+v %+v", sa, sb)
	}
	if sa.Components[0].Address == sb.Components[0].Address {
		t.Fatalf("both got %s", sa.Components[0].Address)
	}
}

func TestUpFailsCleanlyWhenComponentCannotStart(t *testing.T) {
	cfg := testConfig(t)
	broken := func(cfg *config.Config, exe string) []Component {
		cs := fakeComponents(cfg, exe)
		cs[1].Path = "/nonexistent/aurorabox"
		return cs
	}
	var reported error
	err := Up(context.Background(), cfg, UpOptions{Components: broken, Ready: func(e error) { reported = e }})
	if err == nil || !strings.Contains(err.Error(), "master: start /nonexistent/aurorabox") || reported == nil {
		t.Fatalf("err %v, reported %v", err, reported)
	}
	if left := supervise.Find(supervise.Marker(cfg.DataDir)); len(left) != 0 {
		t.Fatalf("processes left: %v", left)
	}
	if isLocked(cfg.Path("aurorabox.lock")) {
		t.Fatal("lock still held")
	}
	if _, err := os.Stat(cfg.Path("env")); !os.IsNotExist(err) {
		t.Fatal("env file written although up failed")
	}
}

func TestEnvFileQuoting(t *testing.T) {
	cfg := &config.Config{DataDir: "/tmp/it's here", Cluster: "c", Bind: "127.0.0.1", ZooKeeper: config.ZooKeeperConfig{Mode: config.ZKEmbedded, Port: 2181}}
	out := string(envFile(cfg, nil))
	if !strings.Contains(out, `export AURORABOX_DATA_DIR='/tmp/it'\''s here'`) {
		t.Fatalf("quoting:\n%s", out)
	}
	// The file must be valid shell that yields the original value.
	path := filepath.Join(t.TempDir(), "env")
	os.WriteFile(path, []byte(out), 0o600)
	got, err := exec.Command("bash", "-c", `. "$1" && printf %s "$AURORABOX_DATA_DIR"`, "x", path).Output()
	if err != nil || string(got) != cfg.DataDir {
		t.Fatalf("sourced %q, %v", got, err)
	}
}
