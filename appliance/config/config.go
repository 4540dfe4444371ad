// Package config loads the appliance configuration: defaults, a YAML file,
// AURORABOX_* environment variables and command-line flags, in increasing
// order of precedence (viper's order). It validates everything up front so a
// bad value is reported with the file and line it came from, before any
// component starts.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/master/allocator"
	"github.com/aurorabox/aurorabox/appliance/mesos/sandboxgc"
	"github.com/aurorabox/aurorabox/appliance/taskports"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable that sets a key:
// zookeeper.port is AURORABOX_ZOOKEEPER_PORT.
const EnvPrefix = "AURORABOX"

// FileName is the config file looked for in the data dir when --config is not given.
const FileName = "aurorabox.yaml"

// Port modes.
const (
	PortsFixed = "fixed" // the configured ports (defaults: the ports Aurora's Vagrant box used)
	PortsAuto  = "auto"  // free ports picked at `up`, so several clusters can share a machine
)

// ZooKeeper modes.
const (
	ZKEmbedded = "embedded"
	ZKExternal = "external"
)

// API authentication modes (the auth key).
const (
	AuthBasic = "basic" // the scheduler requires HTTP basic auth for every RPC that changes state
	AuthNone  = "none"  // the scheduler's API is open to anyone who can reach it
)

// Timing profiles (the timing_profile key): the defaults of the scheduler's
// timing flags (its --timing-profile).
const (
	TimingDev    = "dev"    // short waits, a dev-scaled flapping throttle, a small executor overhead
	TimingAurora = "aurora" // Aurora 0.11's production defaults
)

// MaxAgents bounds --agents: each agent is a simulated host.
const MaxAgents = 16

// Config is the whole appliance configuration. Field tags are the config keys.
type Config struct {
	DataDir       string          `mapstructure:"data_dir"`
	Bind          string          `mapstructure:"bind"`
	Cluster       string          `mapstructure:"cluster"`
	Ports         string          `mapstructure:"ports"`
	ReadyTimeout  time.Duration   `mapstructure:"ready_timeout"`
	ShutdownGrace time.Duration   `mapstructure:"shutdown_grace"`
	ZooKeeper     ZooKeeperConfig `mapstructure:"zookeeper"`
	Master        Listener        `mapstructure:"master"`
	Agent         Listener        `mapstructure:"agent"`
	Agents        int             `mapstructure:"agents"`
	Scheduler     Listener        `mapstructure:"scheduler"`
	Observer      Listener        `mapstructure:"observer"`
	// Auth is AuthBasic (the default: `up` generates a credential in the
	// data dir and the scheduler requires it) or AuthNone.
	Auth string `mapstructure:"auth"`
	// AllowRootTasks lets jobs run as uid 0 (the scheduler's
	// --allow-root-tasks).
	AllowRootTasks bool `mapstructure:"allow_root_tasks"`
	// RevocableCPUs is each agent's fixed revocable-CPU estimate (the
	// agent's --oversubscribed-resources, as Mesos' FixedResourceEstimator;
	// Aurora's Vagrant agent advertised 3), offered to frameworks that take
	// revocable resources for tasks of the revocable tier. 0: none.
	RevocableCPUs float64 `mapstructure:"revocable_cpus"`
	// AllowDockerParameters lets Docker containers carry parameters (the
	// scheduler's --allow-docker-parameters, Aurora's
	// -allow_docker_parameters).
	AllowDockerParameters bool `mapstructure:"allow_docker_parameters"`
	// TimingProfile is TimingDev (the default) or TimingAurora, the
	// scheduler's --timing-profile.
	TimingProfile string `mapstructure:"timing_profile"`
	// LogLevel is the components' log level: debug, info (the default),
	// warn or error; `up` passes it to each as --log-level.
	LogLevel string `mapstructure:"log_level"`
	// GCDelay, GCDiskHeadroom and DiskWatchInterval are the agents' sandbox
	// garbage collection (their --gc-delay, --gc-disk-headroom and
	// --disk-watch-interval; defaults and ranges are Mesos', package sandboxgc).
	GCDelay           time.Duration `mapstructure:"gc_delay"`
	GCDiskHeadroom    float64       `mapstructure:"gc_disk_headroom"`
	DiskWatchInterval time.Duration `mapstructure:"disk_watch_interval"`
	// OfferTimeout is the master's --offer-timeout (Mesos'
	// --offer_timeout): offers a framework holds longer are rescinded, so
	// that another framework gets what Aurora's scheduler holds unused
	// (it keeps offers for a minute before declining). 0: never.
	OfferTimeout time.Duration `mapstructure:"offer_timeout"`
	// Weights are the master's role weights, in Mesos' --weights syntax
	// (role=weight,...); empty: every role weighs 1.
	Weights string `mapstructure:"weights"`

	// File is the config file that was read, or "" when none was.
	File string `mapstructure:"-"`
	// TaskPorts is what the agents offer as their ports resource: set by
	// `up` (a reserved free block with --ports auto); zero means
	// taskports.Fixed.
	TaskPorts taskports.Range `mapstructure:"-"`
}

// ZooKeeperConfig selects the embedded server or a real ensemble.
type ZooKeeperConfig struct {
	Mode    string `mapstructure:"mode"`
	Servers string `mapstructure:"servers"` // host:port,... (external mode)
	Port    int    `mapstructure:"port"`    // embedded server's client port
}

// Listener is a component's HTTP port.
type Listener struct {
	Port int `mapstructure:"port"`
}

// defaults lists every key. Keys not listed here are unknown and rejected.
var defaults = map[string]any{
	"data_dir":                "~/.aurorabox",
	"bind":                    "127.0.0.1",
	"cluster":                 "devcluster",
	"ports":                   PortsFixed,
	"ready_timeout":           30 * time.Second,
	"shutdown_grace":          10 * time.Second,
	"zookeeper.mode":          ZKEmbedded,
	"zookeeper.servers":       "",
	"zookeeper.port":          2181,
	"master.port":             5050,
	"agent.port":              5051,
	"agents":                  1,
	"scheduler.port":          8081,
	"observer.port":           1338,
	"auth":                    AuthBasic,
	"allow_root_tasks":        false,
	"revocable_cpus":          3.0,
	"allow_docker_parameters": false,
	"timing_profile":          TimingDev,
	"log_level":               "info",
	"gc_delay":                sandboxgc.DefaultDelay,
	"gc_disk_headroom":        sandboxgc.DefaultDiskHeadroom,
	"disk_watch_interval":     sandboxgc.DefaultDiskWatchInterval,
	"offer_timeout":           10 * time.Second,
	"weights":                 "",
}

// Keys returns all known config keys, sorted.
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

// Flag names bound to keys. Only the keys people commonly change get a flag;
// everything else is reachable through the file or the environment.
var flagKeys = map[string]string{
	"data-dir": "data_dir",
	"bind":     "bind",
	"cluster":  "cluster",
	"ports":    "ports",
	"agents":   "agents",
	// A persistent flag of every command: the roles read it themselves.
	"log-level": "log_level",
	// up's own flags (AddUpFlags).
	"auth":             "auth",
	"allow-root-tasks": "allow_root_tasks",

	"allow-docker-parameters": "allow_docker_parameters",
	"timing-profile":          "timing_profile",
	"gc-delay":                "gc_delay",
	"gc-disk-headroom":        "gc_disk_headroom",
	"disk-watch-interval":     "disk_watch_interval",
	"offer-timeout":           "offer_timeout",
	"weights":                 "weights",
}

// AddFlags registers the global flags on fs.
func AddFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "config file (default <data-dir>/"+FileName+" if present)")
	fs.String("data-dir", "", "data directory (default ~/.aurorabox)")
	fs.String("bind", "", "address the components listen on (default 127.0.0.1)")
	fs.String("cluster", "", "cluster name (default devcluster)")
	fs.String("ports", "", `"fixed" (2181, 5050, 5051, 8081, 1338) or "auto" (free ports)`)
	fs.Int("agents", 0, "number of Mesos agents, each a simulated host on 127.0.0.N (default 1)")
	fs.String("log-level", "", "log level of every component: debug, info, warn or error (default info; env "+EnvPrefix+"_LOG_LEVEL)")
}

// ParseLogLevel reads a log_level value: debug, info, warn or error, in
// any case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q must be debug, info, warn or error", s)
}

// AddUpFlags registers the flags of `up` that set keys.
func AddUpFlags(fs *pflag.FlagSet) {
	fs.String("auth", "", `scheduler API authentication: "basic" (a credential generated in the data dir; the default) or "none" (open API)`)
	fs.Bool("allow-root-tasks", false, "let jobs run as uid 0 (role root, or a user with uid 0); refused by default")
	fs.Bool("allow-docker-parameters", false, `let Docker containers carry parameters (refused with "Docker parameters not allowed." by default)`)
	fs.Duration("gc-delay", 0, fmt.Sprintf("how long the agents keep a terminated executor's sandbox while the disk has room (default %s; Mesos' --gc_delay)", sandboxgc.DefaultDelay))
	fs.Float64("gc-disk-headroom", 0, fmt.Sprintf("fraction of the disk (0 to 1) the agents keep free: a sandbox is kept gc-delay × max(0, 1 - headroom - disk usage) (default %g; Mesos' --gc_disk_headroom)", sandboxgc.DefaultDiskHeadroom))
	fs.Duration("disk-watch-interval", 0, fmt.Sprintf("how often the agents check the disk usage and remove old sandboxes (default %s; Mesos' --disk_watch_interval)", sandboxgc.DefaultDiskWatchInterval))
	fs.Duration("offer-timeout", 0, "rescind offers a framework holds longer than this (the master's --offer-timeout; default 10s: dev-scaled, so that a second framework gets what Aurora's scheduler holds unused for a minute; 0: never)")
	fs.String("weights", "", `role weights for the master's fair sharing, "role=weight,..." (the master's --weights; default: every role 1)`)
	fs.String("timing-profile", "", `the scheduler's timing defaults: "dev" (short waits, flapping tasks throttled 1 s doubling to 30 s, 0.01 cpu / 32 MB executor overhead; the default) or "aurora" (Aurora 0.11's: 30 s doubling to 5 min, 0.25 cpu / 128 MB, ...)`)
}

// Load builds the configuration from defaults, the config file, the
// environment (env, usually os.Environ()) and the flags that were set on fs.
// home replaces a leading ~ in paths.
func Load(fs *pflag.FlagSet, env []string, home string) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	envMap := envToMap(env)
	// viper's AutomaticEnv reads the process environment; we pass env
	// explicitly so tests stay hermetic.
	for _, k := range Keys() {
		name := EnvName(k)
		if val, ok := envMap[name]; ok {
			v.Set(k, val)
		}
	}
	if fs != nil {
		for name, key := range flagKeys {
			if f := fs.Lookup(name); f != nil && f.Changed {
				v.Set(key, f.Value.String())
			}
		}
	}

	// The config file's default location depends on the data dir, which the
	// file itself may also set, so resolve the data dir from flags/env first.
	file := ""
	if fs != nil {
		if f := fs.Lookup("config"); f != nil && f.Changed {
			file = f.Value.String()
		}
	}
	if file == "" {
		file = envMap[EnvPrefix+"_CONFIG"]
	}
	explicit := file != ""
	if !explicit {
		candidate := filepath.Join(expandHome(v.GetString("data_dir"), home), FileName)
		if _, err := os.Stat(candidate); err == nil {
			file = candidate
		}
	}

	var lines map[string]int
	if file != "" {
		file = expandHome(file, home)
		settings, ln, err := readFile(file)
		if err != nil {
			return nil, err
		}
		lines = ln
		// File values sit below env and flags: only apply keys not already
		// overridden by an explicit v.Set above.
		for k, val := range settings {
			if !isOverridden(k, envMap, fs) {
				v.Set(k, val)
			}
		}
	}

	var cfg Config
	if err := v.Unmarshal(&cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.File = file
	cfg.DataDir = expandHome(cfg.DataDir, home)
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	if err := cfg.validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && lines != nil {
			if line, ok := lines[fe.Key]; ok && !isOverridden(fe.Key, envMap, fs) {
				return nil, fmt.Errorf("%s:%d: %w", file, line, err)
			}
		}
		return nil, err
	}
	return &cfg, nil
}

// EnvName is the environment variable that sets key.
func EnvName(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func isOverridden(key string, env map[string]string, fs *pflag.FlagSet) bool {
	if _, ok := env[EnvName(key)]; ok {
		return true
	}
	if fs == nil {
		return false
	}
	for name, k := range flagKeys {
		if k == key {
			if f := fs.Lookup(name); f != nil && f.Changed {
				return true
			}
		}
	}
	return false
}

// FieldError is a validation error about one key.
type FieldError struct {
	Key string
	Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Key, e.Msg) }

var identifier = regexp.MustCompile(`^[\w\-.]+$`)

func (c *Config) validate() error {
	if c.DataDir == "" {
		return &FieldError{"data_dir", "must not be empty"}
	}
	if ip := net.ParseIP(c.Bind); ip == nil {
		return &FieldError{"bind", fmt.Sprintf("%q is not an IP address", c.Bind)}
	}
	if !identifier.MatchString(c.Cluster) {
		return &FieldError{"cluster", fmt.Sprintf("%q must match %s", c.Cluster, identifier)}
	}
	switch c.Ports {
	case PortsFixed, PortsAuto:
	default:
		return &FieldError{"ports", fmt.Sprintf("%q must be %q or %q", c.Ports, PortsFixed, PortsAuto)}
	}
	if c.ReadyTimeout <= 0 {
		return &FieldError{"ready_timeout", "must be positive"}
	}
	if c.ShutdownGrace <= 0 {
		return &FieldError{"shutdown_grace", "must be positive"}
	}
	switch c.ZooKeeper.Mode {
	case ZKEmbedded:
	case ZKExternal:
		if strings.TrimSpace(c.ZooKeeper.Servers) == "" {
			return &FieldError{"zookeeper.servers", "must list host:port,... when zookeeper.mode is external"}
		}
		for _, s := range strings.Split(c.ZooKeeper.Servers, ",") {
			if _, _, err := net.SplitHostPort(strings.TrimSpace(s)); err != nil {
				return &FieldError{"zookeeper.servers", fmt.Sprintf("%q is not host:port", s)}
			}
		}
	default:
		return &FieldError{"zookeeper.mode", fmt.Sprintf("%q must be %q or %q", c.ZooKeeper.Mode, ZKEmbedded, ZKExternal)}
	}
	switch c.Auth {
	case AuthBasic, AuthNone:
	default:
		return &FieldError{"auth", fmt.Sprintf("%q must be %q or %q", c.Auth, AuthBasic, AuthNone)}
	}
	if c.RevocableCPUs < 0 || math.IsNaN(c.RevocableCPUs) || math.IsInf(c.RevocableCPUs, 0) {
		return &FieldError{"revocable_cpus", fmt.Sprintf("%g must be a non-negative number", c.RevocableCPUs)}
	}
	switch c.TimingProfile {
	case TimingDev, TimingAurora:
	default:
		return &FieldError{"timing_profile", fmt.Sprintf("%q must be %q or %q", c.TimingProfile, TimingDev, TimingAurora)}
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return &FieldError{"log_level", err.Error()}
	}
	if err := sandboxgc.Check(c.GCDelay, c.GCDiskHeadroom, c.DiskWatchInterval); err != nil {
		var se *sandboxgc.SettingError
		if errors.As(err, &se) {
			return &FieldError{se.Setting, se.Msg}
		}
		return err
	}
	if c.OfferTimeout < 0 {
		return &FieldError{"offer_timeout", fmt.Sprintf("%s must not be negative", c.OfferTimeout)}
	}
	if _, err := allocator.ParseWeights(c.Weights); err != nil {
		return &FieldError{"weights", err.Error()}
	}
	if c.Agents < 1 || c.Agents > MaxAgents {
		return &FieldError{"agents", fmt.Sprintf("%d must be between 1 and %d", c.Agents, MaxAgents)}
	}
	if c.Agents > 1 && c.Bind != "127.0.0.1" {
		return &FieldError{"agents", fmt.Sprintf("%d agents need bind 127.0.0.1: each simulated host listens on its own loopback address (127.0.0.2, ...)", c.Agents)}
	}
	seen := map[int]string{}
	for _, p := range c.PortKeys() {
		port := *p.Port
		if port < 1 || port > 65535 {
			return &FieldError{p.Key, fmt.Sprintf("port %d out of range 1-65535", port)}
		}
		if c.Ports == PortsFixed {
			if other, dup := seen[port]; dup {
				return &FieldError{p.Key, fmt.Sprintf("port %d is also %s", port, other)}
			}
			seen[port] = p.Key
		}
	}
	return nil
}

// PortKey names one configured port.
type PortKey struct {
	Key  string
	Port *int
}

// PortKeys returns the configured ports in start order.
func (c *Config) PortKeys() []PortKey {
	return []PortKey{
		{"zookeeper.port", &c.ZooKeeper.Port},
		{"master.port", &c.Master.Port},
		{"agent.port", &c.Agent.Port},
		{"scheduler.port", &c.Scheduler.Port},
		{"observer.port", &c.Observer.Port},
	}
}

// EnsureDataDir creates the data dir (0700) and checks that it is writable.
func (c *Config) EnsureDataDir() error {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", c.DataDir, err)
	}
	probe, err := os.CreateTemp(c.DataDir, ".write-test-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", c.DataDir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

// Path joins elem onto the data dir.
func (c *Config) Path(elem ...string) string {
	return filepath.Join(append([]string{c.DataDir}, elem...)...)
}

// Addr is bind:port.
func (c *Config) Addr(port int) string {
	return net.JoinHostPort(c.Bind, fmt.Sprint(port))
}

func expandHome(p, home string) string {
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p
}

func envToMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
