package appliance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/mesos/master"
)

// AgentSecretPath is the file with the secret that authenticates the
// appliance's agents to its master (both get --agent-secret-file).
func AgentSecretPath(cfg *config.Config) string { return cfg.Path("agent.secret") }

// agentSecretArgs are the master's and each agent's flags for the secret.
func agentSecretArgs(cfg *config.Config) []string {
	return []string{"--agent-secret-file", AgentSecretPath(cfg)}
}

// ensureAgentSecret writes the agent secret on the first start: 32 bytes
// from crypto/rand as 64 hex digits, 0600. The file appears whole or not
// at all (a temporary file linked into place), and an existing one is kept
// and checked, so that agents still running from before a restart of the
// supervisor keep talking to the master.
func ensureAgentSecret(cfg *config.Config) error {
	path := AgentSecretPath(cfg)
	if _, err := master.ReadAgentSecret(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (delete it to have a new one made)", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("agent secret: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".agent.secret.*")
	if err != nil {
		return fmt.Errorf("agent secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("agent secret: %w", err)
	}
	if _, err := tmp.WriteString(hex.EncodeToString(b) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("agent secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("agent secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("agent secret: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("agent secret: %w", err)
	}
	_, err = master.ReadAgentSecret(path)
	return err
}
