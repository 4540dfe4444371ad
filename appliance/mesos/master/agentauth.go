package master

import (
	"crypto/subtle"
	"net/http"

	"github.com/aurorabox/aurorabox/appliance/mesos/agentproto"
)

// The agent ↔ master channel is authenticated with a shared secret: every
// request an agent makes on the internal paths carries
// "Authorization: Bearer <secret>", which the master compares in constant
// time (Config.AgentSecret). A master with no secret refuses agents unless
// told to accept any (Config.InsecureAgents). Without this, any local user
// could report a task failed (and have the scheduler start a duplicate
// while the original runs), or register an agent of its own.

// authAgent admits a request on an internal agent path only from an agent
// that holds the secret (or from anyone with Config.InsecureAgents and no
// secret): 401 for a missing or wrong secret, 403 when the master has no
// secret and was not told to accept any agent.
func (m *Master) authAgent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(m.cfg.AgentSecret) > 0:
			got := r.Header.Get("Authorization")
			want := agentproto.Authorization(m.cfg.AgentSecret)
			if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				m.cfg.Logger.Warn("refused an agent request without the agent secret", "path", r.URL.Path, "remote", r.RemoteAddr)
				w.Header().Set("WWW-Authenticate", `Bearer realm="aurorabox agents"`)
				http.Error(w, "agent authentication failed: this path needs the agent secret (agent --agent-secret-file)", http.StatusUnauthorized)
				return
			}
		case m.cfg.InsecureAgents:
		default:
			http.Error(w, "agents are refused: this master has no agent secret (start it with --agent-secret-file, or --insecure-agents to accept any agent)", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}
