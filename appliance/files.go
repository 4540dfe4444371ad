package appliance

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/atomicfile"
)

// SchedulerZKPath is where schedulers advertise themselves (Aurora's
// -serverset_path and the client's scheduler_zk_path).
const SchedulerZKPath = "/aurora/scheduler"

// AgentWorkDir is the agents' work dir (Mesos --work_dir, Aurora's slave_root).
func AgentWorkDir(cfg *config.Config) string { return cfg.Path("mesos") }

// envFile renders <data-dir>/env: shell-sourceable endpoints of a running
// appliance, so scripts can `. ~/.aurorabox/env` and use them.
func envFile(cfg *config.Config, comps []Component) []byte {
	vars := map[string]string{
		"AURORABOX_DATA_DIR": cfg.DataDir,
		"AURORABOX_CLUSTER":  cfg.Cluster,
		"AURORABOX_ZK":       ZKServers(cfg),
		"AURORABOX_MESOS_ZK": MesosZK(cfg), // what mesos-go, Aurora and mesos-* tools take as --master
		// The aurora client looks for clusters.json in $AURORA_CONFIG_ROOT.
		"AURORA_CONFIG_ROOT": cfg.DataDir,
	}
	for _, c := range comps {
		if c.URL != "" {
			vars["AURORABOX_"+strings.ToUpper(c.Name)+"_URL"] = c.URL
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("# Written by `aurorabox up`. Use it with: . " + cfg.Path("env") + "\n")
	for _, k := range names {
		fmt.Fprintf(&b, "export %s=%s\n", k, shellQuote(vars[k]))
	}
	return []byte(b.String())
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Cluster is one entry of Aurora's clusters.json.
type Cluster struct {
	Name              string `json:"name"`
	ZK                string `json:"zk"`
	ZKPort            int    `json:"zk_port"`
	SchedulerZKPath   string `json:"scheduler_zk_path"`
	SchedulerURI      string `json:"scheduler_uri"`
	AuthMechanism     string `json:"auth_mechanism"`
	SlaveRoot         string `json:"slave_root"`
	SlaveRunDirectory string `json:"slave_run_directory"`
	// BasicAuthFile is the scheduler's credential (a Shiro INI file, see
	// CredentialPath): our clients send its first user's name and
	// password as HTTP basic credentials. Absent with auth none.
	BasicAuthFile string `json:"basic_auth_file,omitempty"`
}

// clustersJSON renders <data-dir>/clusters.json in the format of Aurora's
// examples/vagrant/clusters.json: the client finds the leading scheduler
// through zk + scheduler_zk_path (scheduler_uri is the direct fallback).
// Our clients also read basic_auth_file (Aurora's ignore it and use
// ~/.netrc): the path of the credential, never the password itself, which
// stays in the 0600 file.
func clustersJSON(cfg *config.Config) ([]byte, error) {
	first := strings.TrimSpace(strings.Split(ZKServers(cfg), ",")[0])
	host, portStr, err := net.SplitHostPort(first)
	if err != nil {
		return nil, fmt.Errorf("zookeeper address %q: %w", first, err)
	}
	port, _ := strconv.Atoi(portStr)
	c := Cluster{
		Name: cfg.Cluster, ZK: host, ZKPort: port, SchedulerZKPath: SchedulerZKPath,
		SchedulerURI:  "http://" + cfg.Addr(cfg.Scheduler.Port),
		AuthMechanism: "UNAUTHENTICATED", SlaveRoot: AgentWorkDir(cfg), SlaveRunDirectory: "latest",
	}
	if cfg.Auth == config.AuthBasic {
		c.BasicAuthFile = CredentialPath(cfg)
	}
	b, err := json.MarshalIndent([]Cluster{c}, "", "  ")
	return append(b, '\n'), err
}

// writeFileAtomic replaces path so that readers never see a partial file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode)
}
