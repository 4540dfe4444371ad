package appliance

import (
	"slices"
	"testing"
)

// Every component `up` starts gets the configured log level as a flag.
func TestComponentsGetLogLevel(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = "debug"
	for _, c := range Components(cfg, "/bin/aurorabox") {
		if i := slices.Index(c.Args, "--log-level"); i < 0 || i+1 >= len(c.Args) || c.Args[i+1] != "debug" {
			t.Errorf("%s: args %q lack --log-level debug", c.Name, c.Args)
		}
	}
}
