package appliance

import (
	"slices"
	"testing"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/spf13/pflag"
)

// TestAllowDockerParameters: `up --allow-docker-parameters` (the
// allow_docker_parameters key) reaches the scheduler as its flag; without
// it the scheduler gets none.
func TestAllowDockerParameters(t *testing.T) {
	for _, c := range []struct {
		args []string
		want bool
	}{{nil, false}, {[]string{"--allow-docker-parameters"}, true}} {
		fs := pflag.NewFlagSet("up", pflag.ContinueOnError)
		config.AddFlags(fs)
		config.AddUpFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(fs, nil, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(schedulerArgs(t, cfg), "--allow-docker-parameters"); got != c.want {
			t.Errorf("up %v: scheduler has --allow-docker-parameters %v, want %v", c.args, got, c.want)
		}
	}
}
