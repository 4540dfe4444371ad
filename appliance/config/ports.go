package config

import (
	"fmt"
	"net"
)

// FreePort asks the kernel for a free TCP port on bind. The port is free when
// this returns; another process may still take it before the component
// binds, which is the accepted risk of the `--ports auto` approach.
func FreePort(bind string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(bind, "0"))
	if err != nil {
		return 0, fmt.Errorf("pick a free port on %s: %w", bind, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ResolvePorts replaces every configured port by a free one when Ports is
// "auto". pick is FreePort outside tests.
func (c *Config) ResolvePorts(pick func(bind string) (int, error)) error {
	if c.Ports != PortsAuto {
		return nil
	}
	seen := map[int]bool{}
	for _, p := range c.PortKeys() {
		for {
			port, err := pick(c.Bind)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Key, err)
			}
			// The kernel may hand out a just-released port twice.
			if !seen[port] {
				seen[port] = true
				*p.Port = port
				break
			}
		}
	}
	return nil
}
