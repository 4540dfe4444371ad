package appliance

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/taskports"
)

// autoTaskPorts is how many ports a cluster on --ports auto offers its tasks
// (as many as the fixed 31000-32000, give or take one).
const autoTaskPorts = 1000

// reserveTaskPorts sets cfg.TaskPorts, the ports the agents offer. On fixed
// ports they are taskports.Fixed. On --ports auto they are a block of free
// ports reserved for as long as this supervisor runs, so that no other
// cluster on the machine offers them, and recorded in <data-dir>/task-ports
// so that the next `up` offers the same ones (tasks that outlived a crashed
// supervisor may hold some). release ends the reservation.
func reserveTaskPorts(cfg *config.Config, logger *slog.Logger) (release func(), err error) {
	if cfg.Ports != config.PortsAuto {
		cfg.TaskPorts = taskports.Fixed
		return func() {}, nil
	}
	file := cfg.Path("task-ports")
	if b, err := os.ReadFile(file); err == nil {
		r, err := taskports.ParseRange(string(b))
		if err == nil {
			var res *taskports.Reservation
			if res, err = taskports.Lock(r, taskports.Options{}); err == nil {
				cfg.TaskPorts = r
				return res.Release, nil
			}
		}
		logger.Warn("cannot offer the task ports of the last run again; picking new ones", "file", file, "err", err)
	}
	res, err := taskports.Reserve(autoTaskPorts, taskports.Options{})
	if err != nil {
		return nil, fmt.Errorf("task ports: %w", err)
	}
	if err := writeFileAtomic(file, []byte(res.Range.String()+"\n"), 0o600); err != nil {
		res.Release()
		return nil, fmt.Errorf("task ports: record them: %w", err)
	}
	cfg.TaskPorts = res.Range
	logger.Info("reserved task ports", "ports", res.Range.String())
	return res.Release, nil
}

// resolvePorts picks the components' ports on --ports auto, keeping those of
// the last run (recorded in <data-dir>/ports) that are still free: after a
// supervisor's crash, the executors and tasks that outlived it reach the
// agent and ZooKeeper at the addresses they were given, as after an agent
// restart on a fixed port.
func resolvePorts(cfg *config.Config) error {
	if cfg.Ports != config.PortsAuto {
		return nil
	}
	file := cfg.Path("ports")
	var prev map[string]int
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &prev) // unreadable: pick new ports
	}
	if err := cfg.ResolvePortsKeeping(prev, config.FreePort); err != nil {
		return err
	}
	now := map[string]int{}
	for _, p := range cfg.PortKeys() {
		now[p.Key] = *p.Port
	}
	b, err := json.Marshal(now)
	if err == nil {
		err = writeFileAtomic(file, append(b, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("record the ports in %s: %w", file, err)
	}
	return nil
}
