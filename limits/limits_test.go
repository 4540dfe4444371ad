package limits_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/aurorabox/aurorabox/limits"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// frame is one RecordIO record of n bytes.
func frame(n int) []byte {
	b := []byte(strconv.Itoa(n) + "\n")
	return append(b, bytes.Repeat([]byte{'x'}, n)...)
}

// TestExecutorEventBytesIsMesosGos checks the constant against the reader
// the executor really uses: a record of ExecutorEventBytes is read, one
// byte more is not.
func TestExecutorEventBytesIsMesosGos(t *testing.T) {
	b, err := recordio.NewReader(bytes.NewReader(frame(limits.ExecutorEventBytes))).ReadFrame()
	if err != nil || len(b) != limits.ExecutorEventBytes {
		t.Fatalf("a record of ExecutorEventBytes: %d bytes, %v", len(b), err)
	}
	if _, err := recordio.NewReader(bytes.NewReader(frame(limits.ExecutorEventBytes + 1))).ReadFrame(); err == nil {
		t.Fatalf("a record of ExecutorEventBytes+1 was read: mesos-go's limit is larger than ExecutorEventBytes says")
	}
}

// TestHopsCarryWhatTheyAccept checks that every hop can carry what the one
// before it accepts.
func TestHopsCarryWhatTheyAccept(t *testing.T) {
	for _, c := range []struct {
		what      string
		have, min int
	}{
		{"an ACCEPT call carries at least one launch", limits.MesosCallBytes, limits.ExecutorEventBytes},
		{"an API request carries a task config (JSON, 4x its launch)", limits.APIRequestBytes, 4 * limits.TaskLaunchBytes},
		{"a master-to-agent frame carries a full ACCEPT as JSON (base64 and names: 4x)", limits.AgentFrameBytes, 4 * limits.MesosCallBytes},
		{"an agent subscription carries several frames' worth of tasks", limits.AgentSubscribeBytes, 4 * limits.AgentFrameBytes},
		{"a re-subscribing executor resends its task", limits.ExecutorCallBytes, 2 * limits.ExecutorEventBytes},
		{"an API answer carries a request's worth of config", limits.APIResponseBytes, limits.APIRequestBytes},
		{"the launch reserve is part of the event", limits.ExecutorEventBytes, limits.TaskLaunchBytes + limits.LaunchReserveBytes},
	} {
		if c.have < c.min {
			t.Errorf("%s: %d < %d", c.what, c.have, c.min)
		}
	}
}
