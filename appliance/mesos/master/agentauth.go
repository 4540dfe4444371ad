package master

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// The agent ↔ master channel is authenticated with a shared secret: every
// request an agent makes on the internal paths carries
// "Authorization: Bearer <secret>", which the master compares in constant
// time (Config.AgentSecret). A master with no secret refuses agents unless
// told to accept any (Config.InsecureAgents). Without this, any local user
// could report a task failed (and have the scheduler start a duplicate
// while the original runs), or register an agent of its own.

// MinAgentSecretLen is the shortest agent secret accepted, in characters
// (the appliance writes 64 hex digits: 32 random bytes).
const MinAgentSecretLen = 32

// maxAgentSecretFile bounds what ReadAgentSecret reads.
const maxAgentSecretFile = 4096

// ReadAgentSecret reads the agent secret from path: the file's content
// without surrounding white space. The file must be a regular file that
// only its owner can read or write (0600 or stricter), since the secret is
// what tells an agent from any other local user.
func ReadAgentSecret(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("agent secret: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("agent secret: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("agent secret %s: not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("agent secret %s: mode %#o lets other users read or change it; make it 0600", path, m)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAgentSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("agent secret %s: %w", path, err)
	}
	if len(b) > maxAgentSecretFile {
		return nil, fmt.Errorf("agent secret %s: longer than %d bytes", path, maxAgentSecretFile)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < MinAgentSecretLen {
		return nil, fmt.Errorf("agent secret %s: %d characters, want at least %d", path, len(s), MinAgentSecretLen)
	}
	if strings.ContainsAny(s, "\r\n\t ") {
		return nil, errors.New("agent secret " + path + ": white space inside the secret")
	}
	return []byte(s), nil
}

// AgentAuthorization is the Authorization header value an agent sends.
func AgentAuthorization(secret []byte) string { return "Bearer " + string(secret) }

// authAgent admits a request on an internal agent path only from an agent
// that holds the secret (or from anyone with Config.InsecureAgents and no
// secret): 401 for a missing or wrong secret, 403 when the master has no
// secret and was not told to accept any agent.
func (m *Master) authAgent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case len(m.cfg.AgentSecret) > 0:
			got := r.Header.Get("Authorization")
			want := AgentAuthorization(m.cfg.AgentSecret)
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
