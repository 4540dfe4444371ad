package appliance

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"

	"github.com/aurorabox/aurorabox/appliance/config"
	"github.com/aurorabox/aurorabox/appliance/secretfile"
	"github.com/aurorabox/aurorabox/atomicfile"
	"github.com/aurorabox/aurorabox/scheduler"
)

// FrameworkPrincipal is the principal the appliance's scheduler
// authenticates to its Mesos master as.
const FrameworkPrincipal = "aurora"

// FrameworkAuthPath is the scheduler's framework authentication file (Aurora's
// -framework_authentication_file, a properties file), generated on the
// first start with a random secret and kept: it is where the secret lives.
func FrameworkAuthPath(cfg *config.Config) string { return cfg.Path("framework-auth.properties") }

// FrameworkCredentialsPath is the master's --credentials file, written from
// FrameworkAuthPath on every start.
func FrameworkCredentialsPath(cfg *config.Config) string {
	return cfg.Path("framework-credentials.json")
}

// ensureFrameworkCredential makes the framework credential: on the first
// start a properties file with FrameworkPrincipal and 32 random bytes as 64
// hex digits (0600, whole or not at all; an existing one is kept and
// checked, so that a scheduler still running from before keeps
// authenticating), and on every start the master's credentials file with
// the same principal and secret (0600, replaced atomically).
func ensureFrameworkCredential(cfg *config.Config) error {
	path := FrameworkAuthPath(cfg)
	c, err := scheduler.ReadFrameworkAuthenticationFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("framework credential: %w", err)
		}
		props := fmt.Sprintf("# The Aurora scheduler's credential for the Mesos master (written by aurorabox up).\n%s=%s\n%s=%s\n",
			scheduler.PrincipalKey, FrameworkPrincipal, scheduler.SecretKey, hex.EncodeToString(b))
		if err := secretfile.Create(path, []byte(props)); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("framework credential: %w", err)
		}
		c, err = scheduler.ReadFrameworkAuthenticationFile(path)
	}
	if err != nil {
		return fmt.Errorf("%w (delete it to have a new one made)", err)
	}
	type credential struct {
		Principal string `json:"principal"`
		Secret    string `json:"secret"`
	}
	doc, err := json.MarshalIndent(map[string][]credential{"credentials": {{c.Principal, c.Secret}}}, "", "  ")
	if err != nil {
		return fmt.Errorf("framework credentials: %w", err)
	}
	if err := atomicfile.Write(FrameworkCredentialsPath(cfg), append(doc, '\n'), 0o600); err != nil {
		return fmt.Errorf("framework credentials: %w", err)
	}
	return nil
}
