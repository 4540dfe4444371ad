package appliance

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/supervise"
	"github.com/aurorabox/aurorabox/appliance/taskports"
)

// Component is a role the appliance runs, with what `up` publishes about it.
type Component struct {
	supervise.Spec
	// URL is the component's HTTP endpoint, published in the env file as
	// AURORABOX_<NAME>_URL; empty for non-HTTP components.
	URL string
}

// Components lists the roles `up` starts for cfg, in dependency order
// (zookeeper → master → agent → scheduler → observer). exe is the aurorabox
// binary that the children run as.
func Components(cfg *config.Config, exe string) []Component {
	env := childEnv(cfg)
	spec := func(name string, addr string, args ...string) supervise.Spec {
		return supervise.Spec{
			Name: name, Path: exe, Args: append(append([]string{name}, args...), "--log-level", cfg.LogLevel), Env: env,
			Dir: cfg.DataDir, Log: cfg.Path("logs", name+".log"), Addr: addr,
			ReadyTimeout: cfg.ReadyTimeout, StopGrace: cfg.ShutdownGrace,
		}
	}
	var out []Component
	if cfg.ZooKeeper.Mode == config.ZKEmbedded {
		zkAddr := cfg.Addr(cfg.ZooKeeper.Port)
		z := spec("zookeeper", zkAddr, "--listen", zkAddr, "--data-dir", cfg.Path("zookeeper"))
		z.Probe = ruokProbe(zkAddr)
		// When the supervisor dies, ZooKeeper outlives the other components
		// (see the zookeeper role), so that they close their sessions.
		z.DeathSignal = supervise.SignalOrphaned
		out = append(out, Component{Spec: z})
	}
	masterAddr, agentAddr := cfg.Addr(cfg.Master.Port), cfg.Addr(cfg.Agent.Port)
	ports := cfg.TaskPorts
	if ports == (taskports.Range{}) {
		ports = taskports.Fixed
	}
	m := spec("master", masterAddr, append([]string{"--listen", masterAddr, "--zk", MesosZK(cfg),
		"--offer-timeout", cfg.OfferTimeout.String(), "--weights", cfg.Weights, "--credentials", FrameworkCredentialsPath(cfg)}, agentSecretArgs(cfg)...)...)
	if cfg.AllowRootTasks {
		// Tasks may run as root through any framework, not only Aurora's.
		m.Args = append(m.Args, "--root-submissions")
	}
	m.Probe = httpProbe("http://" + masterAddr + "/master/health")
	out = append(out, Component{Spec: m, URL: "http://" + masterAddr})
	for i := 1; i <= cfg.Agents; i++ {
		name, addr := "agent", agentAddr
		args := []string{"--listen", addr, "--master", "http://" + masterAddr, "--work-dir", AgentWorkDir(cfg), "--resources", ports.Resource()}
		if cfg.Agents > 1 {
			// Simulated hosts: agent i listens on 127.0.0.i, which is its
			// hostname, sits in one of two racks, and gets its own slice
			// of the port range, since all tasks share this machine's ports.
			host := fmt.Sprintf("127.0.0.%d", i)
			addr = net.JoinHostPort(host, fmt.Sprint(cfg.Agent.Port))
			if i > 1 {
				name = fmt.Sprintf("agent%d", i)
			}
			span := ports.Len() / cfg.Agents
			lo := ports.Lo + (i-1)*span
			args = []string{"--listen", addr, "--master", "http://" + masterAddr, "--work-dir", AgentWorkDir(cfg),
				"--name", fmt.Sprint(i), "--attributes", fmt.Sprintf("rack:r%d;host:%s", (i-1)%2+1, host),
				"--resources", fmt.Sprintf("ports:[%d-%d]", lo, lo+span-1)}
		}
		if cfg.RevocableCPUs > 0 {
			args = append(args, "--oversubscribed-resources", fmt.Sprintf("cpus:%g", cfg.RevocableCPUs))
		}
		args = append(args, "--gc-delay", cfg.GCDelay.String(), "--gc-disk-headroom", strconv.FormatFloat(cfg.GCDiskHeadroom, 'g', -1, 64),
			"--disk-watch-interval", cfg.DiskWatchInterval.String())
		a := spec("agent", addr, append(args, agentSecretArgs(cfg)...)...)
		a.Name, a.Log = name, cfg.Path("logs", name+".log")
		a.Probe = httpProbe("http://" + addr + "/health") // 200 once registered with the master
		out = append(out, Component{Spec: a, URL: "http://" + addr})
	}
	schedAddr := cfg.Addr(cfg.Scheduler.Port)
	sc := spec("scheduler", schedAddr, "--listen", schedAddr, "--master", MesosZK(cfg), "--zk", ZKServers(cfg),
		"--data-dir", cfg.Path("scheduler"), "--announcer-ensemble", ZKServers(cfg), "--observer-port", fmt.Sprint(cfg.Observer.Port),
		"--framework-authentication-file", FrameworkAuthPath(cfg))
	if cfg.Auth == config.AuthBasic {
		sc.Args = append(sc.Args, "--shiro-ini", CredentialPath(cfg))
	}
	if cfg.AllowRootTasks {
		sc.Args = append(sc.Args, "--allow-root-tasks")
	}
	if cfg.AllowDockerParameters {
		sc.Args = append(sc.Args, "--allow-docker-parameters")
	}
	if cfg.TimingProfile != "" {
		sc.Args = append(sc.Args, "--timing-profile", cfg.TimingProfile)
	}
	sc.Probe = httpProbe("http://" + schedAddr + "/leaderhealth") // 200 once leading and registered with Mesos
	out = append(out, Component{Spec: sc, URL: "http://" + schedAddr})
	obsAddr := cfg.Addr(cfg.Observer.Port)
	ob := spec("observer", obsAddr, "--listen", obsAddr, "--work-dir", AgentWorkDir(cfg))
	ob.Probe = httpProbe("http://" + obsAddr + "/health")
	out = append(out, Component{Spec: ob, URL: "http://" + obsAddr})
	return out
}

// ruokProbe passes when the ZooKeeper at addr answers ruok with imok.
func ruokProbe(addr string) supervise.Probe {
	return func(ctx context.Context) error {
		out, err := FourLetterWord(ctx, addr, "ruok")
		if err != nil {
			return err
		}
		if out != "imok" {
			return fmt.Errorf("zookeeper %s: ruok answered %q", addr, out)
		}
		return nil
	}
}

// httpProbe passes when url answers 200.
func httpProbe(url string) supervise.Probe {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	}
}

// MesosZK is the zk:// URL under which the master registers, as Mesos'
// --zk flag takes it.
func MesosZK(cfg *config.Config) string { return "zk://" + ZKServers(cfg) + "/mesos" }

// ZKServers is the ZooKeeper connect string the components use.
func ZKServers(cfg *config.Config) string {
	if cfg.ZooKeeper.Mode == config.ZKExternal {
		return cfg.ZooKeeper.Servers
	}
	return cfg.Addr(cfg.ZooKeeper.Port)
}

// childEnv is the environment of every component: ours, minus the AURORABOX_*
// settings (children get their settings as flags, so that what `up` resolved,
// such as auto ports, wins), plus the marker that lets Sweep find them.
func childEnv(cfg *config.Config) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, config.EnvPrefix+"_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, supervise.Marker(cfg.DataDir))
}

// FourLetterWord sends a ZooKeeper four-letter command and returns the reply.
func FourLetterWord(ctx context.Context, addr, cmd string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, cmd); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(c, 1<<20))
	if err != nil {
		return "", err
	}
	return string(b), nil
}
