package appliance

import (
	"slices"
	"testing"
	"time"

	"github.com/aurorabox/aurorabox/appliance/config"
)

// The master gets the appliance's offer timeout and role weights.
func TestComponentsMasterAllocationFlags(t *testing.T) {
	cfg := &config.Config{DataDir: t.TempDir(), Bind: "127.0.0.1", Agents: 1, OfferTimeout: 10 * time.Second, Weights: "ops=2"}
	for _, c := range Components(cfg, "/bin/aurorabox") {
		if c.Name != "master" {
			continue
		}
		i, j := slices.Index(c.Args, "--offer-timeout"), slices.Index(c.Args, "--weights")
		if i < 0 || j < 0 || i+1 >= len(c.Args) || j+1 >= len(c.Args) || c.Args[i+1] != "10s" || c.Args[j+1] != "ops=2" {
			t.Fatalf("master args %q", c.Args)
		}
		return
	}
	t.Fatal("no master component")
}
