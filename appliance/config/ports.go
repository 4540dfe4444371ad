package config

import (
	"fmt"
	"math/rand/v2"
	"net"
)

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi int }

func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.Lo, r.Hi) }

// DefaultTaskPorts is the task port range with fixed ports: Mesos' default
// agent ports, as on Aurora's Vagrant box.
var DefaultTaskPorts = PortRange{31000, 32000}

// Auto task port ranges are autoTaskPortSpan ports, aligned, below
// DefaultTaskPorts and above the usual service ports; all of it lies below
// Linux's ephemeral range (32768 up), so outgoing connections do not take
// task ports.
const (
	autoTaskPortSpan = 200
	autoTaskPortLo   = 10000
	autoTaskPortHi   = 31000 // exclusive
)

// TaskPortRange is the range the agents offer to tasks.
func (c *Config) TaskPortRange() PortRange {
	if c.TaskPorts == (PortRange{}) {
		return DefaultTaskPorts
	}
	return c.TaskPorts
}

// freeTaskPorts picks a random aligned range of autoTaskPortSpan ports in
// which nothing listens on any address and that holds none of taken, so
// that the tasks of several appliances on one machine do not collide.
func freeTaskPorts(taken map[int]bool) (PortRange, error) {
	windows := (autoTaskPortHi - autoTaskPortLo) / autoTaskPortSpan
	for _, w := range rand.Perm(windows) {
		r := PortRange{autoTaskPortLo + w*autoTaskPortSpan, autoTaskPortLo + (w+1)*autoTaskPortSpan - 1}
		if rangeFree(r, taken) {
			return r, nil
		}
	}
	return PortRange{}, fmt.Errorf("no free range of %d task ports between %d and %d", autoTaskPortSpan, autoTaskPortLo, autoTaskPortHi-1)
}

func rangeFree(r PortRange, taken map[int]bool) bool {
	for p := r.Lo; p <= r.Hi; p++ {
		if taken[p] {
			return false
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

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
// "auto", and picks a free task port range (see freeTaskPorts). pick is
// FreePort outside tests.
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
	r, err := freeTaskPorts(seen)
	if err != nil {
		return err
	}
	c.TaskPorts = r
	return nil
}
