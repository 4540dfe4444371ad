//go:build race

package scheduler_test

import "github.com/aurorabox/aurorabox/scheduler"

// The tests' executor is the test binary itself; built with -race it
// needs far more memory than the default overhead's 32 MB (the kernel's
// OOM killer ended one mid-test), so race builds give it room.
func init() { testOverhead = scheduler.Overhead{CPUs: scheduler.DevExecutorOverhead.CPUs, MemMB: 128} }
