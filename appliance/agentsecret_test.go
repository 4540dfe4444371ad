package appliance

import (
	"os"
	"regexp"
	"slices"
	"testing"
)

// TestAgentSecret: up writes a random 0600 agent secret on first start,
// keeps it across restarts, and hands its file (never the secret itself,
// which ps would show) to the master and every agent.
func TestAgentSecret(t *testing.T) {
	cfg := testConfig(t)
	r := startUp(t, cfg)
	path := AgentSecretPath(cfg)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(first) {
		t.Errorf("secret %q, want 64 hex digits", first)
	}
	r.cancel()
	r.done <- <-r.done // stopped; its cleanup reads it again
	startUp(t, cfg)
	if again, _ := os.ReadFile(path); string(again) != string(first) {
		t.Error("the secret changed across restarts")
	}

	cfg.Agents = 2
	var withSecret []string
	for _, c := range Components(cfg, "/bin/aurorabox") {
		if i := slices.Index(c.Args, "--agent-secret-file"); i >= 0 && i+1 < len(c.Args) && c.Args[i+1] == path {
			withSecret = append(withSecret, c.Name)
		}
		for _, a := range c.Args {
			if a == string(first[:64]) {
				t.Errorf("%s gets the secret on its command line", c.Name)
			}
		}
	}
	if !slices.Equal(withSecret, []string{"master", "agent", "agent2"}) {
		t.Errorf("components given the secret file: %v, want master, agent, agent2", withSecret)
	}
}
