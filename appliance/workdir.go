package appliance

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// searchBits are the group and other search (execute) permissions of a
// directory: enough to pass through it by name, not to list or read it.
const searchBits = 0o011

// prepareAgentWorkDir lets the users that tasks run as reach their
// sandboxes in the agents' work dir (AgentWorkDir) when the appliance runs
// as root, whatever the data dir is: a 0700 `mktemp -d`, or ~/.aurorabox in
// a 0700 /root. Every directory from / down to the work dir gets the search
// bits it lacks for group and others, and nothing more: the data dir and
// its ancestors stay unreadable (unlistable) to other users, and every
// other entry of the data dir stays as private as it is made (0700 dirs,
// 0600 files). Beneath the work dir the agent keeps the same rule (0711 down
// to the run directories, each run directory 0700 and its task user's).
// A directory outside the data dir that had to change is logged.
//
// An appliance that does not run as root runs every task as its own user,
// and changes nothing.
func prepareAgentWorkDir(cfg *config.Config, logger *slog.Logger) error {
	if os.Geteuid() != 0 {
		return nil
	}
	work := AgentWorkDir(cfg)
	if err := os.MkdirAll(work, 0o711); err != nil {
		return fmt.Errorf("agent work dir: %w", err)
	}
	dataDir := filepath.Clean(cfg.DataDir)
	for d := filepath.Clean(work); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("agent work dir: %w", err)
		}
		if m := fi.Mode().Perm(); m&searchBits != searchBits {
			if err := os.Chmod(d, m|searchBits); err != nil {
				return fmt.Errorf("agent work dir: letting task users pass through %s: %w", d, err)
			}
			if !within(d, dataDir) {
				logger.Warn("made a directory searchable (not readable) by other users, so that tasks' users reach their sandboxes",
					"dir", d, "mode", fmt.Sprintf("%#o", m|searchBits), "was", fmt.Sprintf("%#o", m))
			}
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// within reports whether path is dir or beneath it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
