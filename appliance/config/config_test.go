package config

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestDefaults(t *testing.T) {
	home := t.TempDir()
	cfg, err := Load(flags(t), nil, home)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		DataDir: filepath.Join(home, ".aurorabox"), Bind: "127.0.0.1", Cluster: "devcluster",
		Ports: PortsFixed, ReadyTimeout: 30 * time.Second, ShutdownGrace: 10 * time.Second,
		ZooKeeper: ZooKeeperConfig{Mode: ZKEmbedded, Port: 2181}, Agents: 1,
		Master: Listener{5050}, Agent: Listener{5051}, Scheduler: Listener{8081}, Observer: Listener{1338},
		Auth: AuthBasic, RevocableCPUs: 3, TimingProfile: TimingDev, LogLevel: "info",
		GCDelay: 7 * 24 * time.Hour, GCDiskHeadroom: 0.1, DiskWatchInterval: time.Minute, OfferTimeout: 10 * time.Second,
	}
	if *cfg != want {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *cfg, want)
	}
}

func TestPrecedence(t *testing.T) {
	full, _ := filepath.Abs("testdata/full.yaml")
	tests := []struct {
		name    string
		args    []string
		env     []string
		cluster string
		bind    string
		zkPort  int
	}{
		{"file over defaults", []string{"--config", full}, nil, "filecluster", "127.0.0.2", 2999},
		{"env over file", []string{"--config", full}, []string{"AURORABOX_CLUSTER=envcluster", "AURORABOX_ZOOKEEPER_PORT=3000"}, "envcluster", "127.0.0.2", 3000},
		{"flag over env", []string{"--config", full, "--cluster", "flagcluster"}, []string{"AURORABOX_CLUSTER=envcluster"}, "flagcluster", "127.0.0.2", 2999},
		{"config from env", nil, []string{"AURORABOX_CONFIG=" + full}, "filecluster", "127.0.0.2", 2999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(flags(t, tt.args...), tt.env, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Cluster != tt.cluster || cfg.Bind != tt.bind || cfg.ZooKeeper.Port != tt.zkPort {
				t.Fatalf("got cluster=%s bind=%s zk=%d", cfg.Cluster, cfg.Bind, cfg.ZooKeeper.Port)
			}
			if cfg.Master.Port != 6050 || cfg.ReadyTimeout != 5*time.Second {
				t.Fatalf("file values lost: %+v", cfg)
			}
		})
	}
}

func TestDefaultFileInDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte("cluster: indatadir\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(flags(t, "--data-dir", dir), nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster != "indatadir" || cfg.File != filepath.Join(dir, FileName) {
		t.Fatalf("got %+v", cfg)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		want string // substring of the error
	}{
		{"unknown key names file and line", []string{"--config", "testdata/unknown-key.yaml"}, nil, `testdata/unknown-key.yaml:4: unknown key "zookeeper.prot"`},
		{"port out of range names line", []string{"--config", "testdata/bad-port.yaml"}, nil, "testdata/bad-port.yaml:3: master.port: port 70000 out of range"},
		{"bad yaml names line", []string{"--config", "testdata/bad-yaml.yaml"}, nil, "testdata/bad-yaml.yaml: yaml: line 2"},
		{"not an int names line", []string{"--config", "testdata/not-int.yaml"}, nil, `testdata/not-int.yaml:2: scheduler.port: "eighty" is not an integer`},
		{"missing file", []string{"--config", "testdata/nope.yaml"}, nil, "no such file"},
		{"bad ports mode", []string{"--ports", "some"}, nil, `ports: "some" must be "fixed" or "auto"`},
		{"bad bind", []string{"--bind", "localhost"}, nil, `bind: "localhost" is not an IP address`},
		{"bad cluster", []string{"--cluster", "a b"}, nil, `cluster: "a b" must match`},
		{"env port out of range", nil, []string{"AURORABOX_AGENT_PORT=0"}, "agent.port: port 0 out of range"},
		{"duplicate ports", nil, []string{"AURORABOX_AGENT_PORT=5050"}, "agent.port: port 5050 is also master.port"},
		{"external without servers", nil, []string{"AURORABOX_ZOOKEEPER_MODE=external"}, "zookeeper.servers: must list"},
		{"bad external servers", nil, []string{"AURORABOX_ZOOKEEPER_MODE=external", "AURORABOX_ZOOKEEPER_SERVERS=zk1"}, `"zk1" is not host:port`},
		{"bad zk mode", nil, []string{"AURORABOX_ZOOKEEPER_MODE=cloud"}, `zookeeper.mode: "cloud"`},
		{"no agents", []string{"--agents", "0"}, nil, "agents: 0 must be between 1 and 16"},
		{"too many agents", nil, []string{"AURORABOX_AGENTS=17"}, "agents: 17 must be between 1 and 16"},
		{"agents need loopback", []string{"--agents", "3", "--bind", "0.0.0.0"}, nil, "3 agents need bind 127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(flags(t, tt.args...), tt.env, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestEnsureDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	cfg := &Config{DataDir: dir}
	if err := cfg.EnsureDataDir(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode: %v %v", st, err)
	}
	// A path under a regular file cannot be created, even by root.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	bad := &Config{DataDir: filepath.Join(file, "sub")}
	if err := bad.EnsureDataDir(); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("want data dir error, got %v", err)
	}
}

func TestResolvePorts(t *testing.T) {
	cfg, err := Load(flags(t, "--ports", "auto"), nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// A picker that repeats itself must still yield distinct ports.
	seq := []int{40001, 40001, 40002, 40003, 40003, 40004, 40005}
	i := 0
	pick := func(string) (int, error) { p := seq[i]; i++; return p, nil }
	if err := cfg.ResolvePorts(pick); err != nil {
		t.Fatal(err)
	}
	got := []int{cfg.ZooKeeper.Port, cfg.Master.Port, cfg.Agent.Port, cfg.Scheduler.Port, cfg.Observer.Port}
	want := []int{40001, 40002, 40003, 40004, 40005}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ports %v, want %v", got, want)
		}
	}
	if err := cfg.ResolvePorts(FreePort); err != nil {
		t.Fatal(err)
	}
}

// auth and allow_root_tasks come from up's flags, the environment or the
// file, in that order of precedence; bad values name the key.
func TestAuthKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(file, []byte("auth: none\nallow_root_tasks: true\n"), 0o600)
	for _, c := range []struct {
		name  string
		args  []string
		env   []string
		auth  string
		allow bool
	}{
		{"defaults", nil, nil, AuthBasic, false},
		{"flags", []string{"--auth", "none", "--allow-root-tasks"}, nil, AuthNone, true},
		{"env", nil, []string{"AURORABOX_AUTH=none", "AURORABOX_ALLOW_ROOT_TASKS=true"}, AuthNone, true},
		{"file", []string{"--config", file}, nil, AuthNone, true},
		{"flag over file", []string{"--config", file, "--auth", "basic", "--allow-root-tasks=false"}, nil, AuthBasic, false},
	} {
		cfg, err := Load(upFlags(t, c.args...), c.env, t.TempDir())
		if err != nil || cfg.Auth != c.auth || cfg.AllowRootTasks != c.allow {
			t.Errorf("%s: auth %q allow %v, %v; want %q %v", c.name, cfg.Auth, cfg.AllowRootTasks, err, c.auth, c.allow)
		}
	}
	if _, err := Load(upFlags(t, "--auth", "kerberos"), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), `auth: "kerberos" must be "basic" or "none"`) {
		t.Errorf("bad auth: %v", err)
	}
	os.WriteFile(file, []byte("allow_root_tasks: maybe\n"), 0o600)
	if _, err := Load(upFlags(t, "--config", file), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), `a.yaml:1: allow_root_tasks: "maybe" is not true or false`) {
		t.Errorf("bad bool: %v", err)
	}
}

// timing_profile comes from up's --timing-profile, the environment or the
// file (dev by default); a bad value names the key and the file's line.
func TestTimingProfileKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(file, []byte("timing_profile: aurora\n"), 0o600)
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"default", nil, nil, TimingDev},
		{"flag", []string{"--timing-profile", "aurora"}, nil, TimingAurora},
		{"env", nil, []string{"AURORABOX_TIMING_PROFILE=aurora"}, TimingAurora},
		{"file", []string{"--config", file}, nil, TimingAurora},
		{"flag over file", []string{"--config", file, "--timing-profile", "dev"}, nil, TimingDev},
	} {
		cfg, err := Load(upFlags(t, c.args...), c.env, t.TempDir())
		if err != nil || cfg.TimingProfile != c.want {
			t.Errorf("%s: timing profile %+v, %v; want %q", c.name, cfg, err, c.want)
		}
	}
	os.WriteFile(file, []byte("timing_profile: fast\n"), 0o600)
	if _, err := Load(upFlags(t, "--config", file), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), `a.yaml:1: timing_profile: "fast" must be "dev" or "aurora"`) {
		t.Errorf("bad profile: %v", err)
	}
}

// The agents' sandbox GC settings come from up's flags, the environment or
// the file (Mesos' defaults otherwise); a value out of range names the key
// and the file's line, and a headroom of 0 is kept (no headroom, as Mesos).
func TestSandboxGCKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(file, []byte("gc_delay: 2h\ngc_disk_headroom: 0\ndisk_watch_interval: 10s\n"), 0o600)
	type gc struct {
		delay, watch time.Duration
		headroom     float64
	}
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want gc
	}{
		{"default", nil, nil, gc{7 * 24 * time.Hour, time.Minute, 0.1}},
		{"flags", []string{"--gc-delay", "1h", "--gc-disk-headroom", "0.25", "--disk-watch-interval", "5s"}, nil, gc{time.Hour, 5 * time.Second, 0.25}},
		{"env", nil, []string{"AURORABOX_GC_DELAY=3h", "AURORABOX_GC_DISK_HEADROOM=0.5", "AURORABOX_DISK_WATCH_INTERVAL=30s"}, gc{3 * time.Hour, 30 * time.Second, 0.5}},
		{"file", []string{"--config", file}, nil, gc{2 * time.Hour, 10 * time.Second, 0}},
		{"flag over file", []string{"--config", file, "--gc-disk-headroom", "1"}, nil, gc{2 * time.Hour, 10 * time.Second, 1}},
	} {
		cfg, err := Load(upFlags(t, c.args...), c.env, t.TempDir())
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := (gc{cfg.GCDelay, cfg.DiskWatchInterval, cfg.GCDiskHeadroom}); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--gc-disk-headroom", "1.5"}, "gc_disk_headroom: 1.5 must be between 0 and 1"},
		{[]string{"--gc-disk-headroom", "-0.1"}, "gc_disk_headroom: -0.1 must be between 0 and 1"},
		{[]string{"--gc-disk-headroom", "NaN"}, "gc_disk_headroom: NaN must be between 0 and 1"},
		{[]string{"--gc-delay", "0s"}, "gc_delay: 0s must be positive"},
		{[]string{"--disk-watch-interval", "-1m"}, "disk_watch_interval: -1m0s must be positive"},
	} {
		if _, err := Load(upFlags(t, c.args...), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	os.WriteFile(file, []byte("cluster: x\ngc_disk_headroom: 2\n"), 0o600)
	if _, err := Load(upFlags(t, "--config", file), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "a.yaml:2: gc_disk_headroom: 2 must be between 0 and 1") {
		t.Errorf("bad headroom in a file: %v", err)
	}
}

// A restart on --ports auto keeps the ports of the last run that are still
// free, and picks new ones for the others.
func TestResolvePortsKeeping(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free, err := FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &Config{Ports: PortsAuto, Bind: "127.0.0.1"}
	prev := map[string]int{"master.port": free, "agent.port": busyPort, "observer.port": free}
	if err := cfg.ResolvePortsKeeping(prev, FreePort); err != nil {
		t.Fatal(err)
	}
	if cfg.Master.Port != free {
		t.Errorf("master.port = %d, want the free recorded %d", cfg.Master.Port, free)
	}
	if cfg.Agent.Port == busyPort || cfg.Agent.Port == 0 {
		t.Errorf("agent.port = %d: the recorded %d is taken", cfg.Agent.Port, busyPort)
	}
	if cfg.Observer.Port == free {
		t.Errorf("observer.port = %d, the port master.port already has", cfg.Observer.Port)
	}
}

// upFlags parses args as `aurorabox up`'s flags.
func upFlags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("up", pflag.ContinueOnError)
	AddFlags(fs)
	AddUpFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

// log_level comes from --log-level, the environment or the file, and a
// bad value is refused naming the key and the accepted values.
func TestLogLevelKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(file, []byte("log_level: warn\n"), 0o600)
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"default", nil, nil, "info"},
		{"flag", []string{"--log-level", "debug"}, nil, "debug"},
		{"env", nil, []string{"AURORABOX_LOG_LEVEL=error"}, "error"},
		{"file", []string{"--config", file}, nil, "warn"},
		{"flag over env", []string{"--log-level", "debug"}, []string{"AURORABOX_LOG_LEVEL=error"}, "debug"},
	} {
		cfg, err := Load(upFlags(t, c.args...), c.env, t.TempDir())
		if err != nil || cfg.LogLevel != c.want {
			t.Errorf("%s: log level %q, %v; want %q", c.name, cfg.LogLevel, err, c.want)
		}
	}
	if _, err := Load(upFlags(t, "--log-level", "loud"), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), `log_level: "loud" must be debug, info, warn or error`) {
		t.Errorf("bad level: %v", err)
	}
}

// offer_timeout and weights come from up's --offer-timeout and --weights
// (the master's flags), the environment or the file; the offer timeout is
// 10s by default, and bad values name the key.
func TestOfferTimeoutAndWeightsKeys(t *testing.T) {
	cfg, err := Load(upFlags(t, "--offer-timeout", "1m", "--weights", "ops=2,dev=0.5"), nil, t.TempDir())
	if err != nil || cfg.OfferTimeout != time.Minute || cfg.Weights != "ops=2,dev=0.5" {
		t.Fatalf("flags: %+v %v", cfg, err)
	}
	cfg, err = Load(upFlags(t), []string{"AURORABOX_OFFER_TIMEOUT=0s"}, t.TempDir())
	if err != nil || cfg.OfferTimeout != 0 {
		t.Fatalf("env: %v %v", cfg.OfferTimeout, err)
	}
	if _, err := Load(upFlags(t, "--weights", "ops=-1"), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "weights: ") || !strings.Contains(err.Error(), "role ops must be a positive number") {
		t.Errorf("bad weights: %v", err)
	}
	if _, err := Load(upFlags(t, "--offer-timeout", "-1s"), nil, t.TempDir()); err == nil || !strings.Contains(err.Error(), "offer_timeout: -1s must not be negative") {
		t.Errorf("negative offer timeout: %v", err)
	}
}
