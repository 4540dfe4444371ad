package zkcompat

import (
	"fmt"
	"os"
	"testing"
)

// Environment of the re-executed test binary when it acts as our server
// (see startOursProcess).
const (
	serveEnv     = "AURORABOX_ZKCOMPAT_SERVE"
	serveAddrEnv = "AURORABOX_ZKCOMPAT_ADDR"
	serveDirEnv  = "AURORABOX_ZKCOMPAT_DIR"
	oursModeEnv  = "AURORABOX_ZKCOMPAT_OURS" // "subprocess" or "" (in-process)
)

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		// Re-executed as our ZooKeeper server: serve until SIGTERM.
		if err := serveOursMain(os.Getenv(serveAddrEnv), os.Getenv(serveDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "zkcompat server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
