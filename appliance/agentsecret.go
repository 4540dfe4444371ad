package appliance

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
	"github.com/aurorabox/aurorabox/appliance/secretfile"
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
	if _, err := agentproto.ReadSecret(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (delete it to have a new one made)", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("agent secret: %w", err)
	}
	if err := secretfile.Create(path, []byte(hex.EncodeToString(b)+"\n")); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("agent secret: %w", err)
	}
	_, err := agentproto.ReadSecret(path)
	return err
}
