package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/isolation"
)

// agentNames are the --name values of the agents `up` runs for cfg.
func agentNames(cfg *config.Config) []string {
	if cfg.Agents <= 1 {
		return []string{""}
	}
	names := make([]string, cfg.Agents)
	for i := range names {
		names[i] = fmt.Sprint(i + 1)
	}
	return names
}

// removeContainers destroys the agents' container cgroups and whatever still
// runs in them. An agent keeps its containers when it merely stops (tasks
// outlive an agent restart, as on Mesos, and a supervisor's crash: the next
// `up` recovers them); the appliance going down is what ends them.
func removeContainers(cfg *config.Config, logger *slog.Logger) {
	for _, name := range agentNames(cfg) {
		iso, err := isolation.New(isolation.AgentRoot(AgentWorkDir(cfg), name), slog.New(slog.DiscardHandler))
		if err == nil {
			err = iso.Cleanup()
		}
		if err != nil {
			logger.Warn("removing task containers", "err", err)
		}
	}
}

// agentIsolation asks an agent how it isolates containers.
func agentIsolation(ctx context.Context, agentURL string) (mode, reason string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, agentURL+"/state", nil)
	if err != nil {
		return "", "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var st struct {
		Isolation       string `json:"isolation"`
		IsolationReason string `json:"isolation_reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", "", fmt.Errorf("agent state: %w", err)
	}
	return st.Isolation, st.IsolationReason, nil
}
