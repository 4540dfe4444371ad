package appliance

import (
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
