package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// Status updates are delivered in order and at least once: per task, only
// the oldest unacknowledged update is in flight, and it is resent with
// backoff (from Config.StatusUpdateRetryInterval, doubling up to retryMax)
// until the framework acknowledges it.
const (
	defaultRetryMin = 2 * time.Second
	retryMax        = time.Minute
)

type updateKey struct{ fw, task string }

type updateStream struct {
	pending  []mesos.TaskStatus
	sentAt   time.Time
	interval time.Duration
}

type updateManager struct {
	forward  func(fw string, st mesos.TaskStatus) error
	logger   *slog.Logger
	retryMin time.Duration

	mu      sync.Mutex
	streams map[updateKey]*updateStream
	order   []updateKey // streams in first-update order, for the checkpoint
	path    string      // checkpoint file; "" until the agent has an id
}

// pendingUpdate is one line of the checkpoint.
type pendingUpdate struct {
	Framework string           `json:"framework_id"`
	Status    mesos.TaskStatus `json:"status"`
}

func (m *updateManager) setCheckpoint(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.path = path
	m.persistLocked()
}

// persistLocked writes every pending update to the checkpoint.
func (m *updateManager) persistLocked() {
	if m.path == "" {
		return
	}
	var all []pendingUpdate
	for _, k := range m.order {
		if s := m.streams[k]; s != nil {
			for _, st := range s.pending {
				all = append(all, pendingUpdate{k.fw, st})
			}
		}
	}
	b, err := json.Marshal(all)
	if err == nil {
		err = writeFileAtomic(m.path, b)
	}
	if err != nil {
		m.logger.Error("checkpointing status updates", "err", err)
	}
}

// recover loads the checkpoint written before a restart.
func (m *updateManager) recover() error {
	m.mu.Lock()
	path := m.path
	m.mu.Unlock()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var all []pendingUpdate
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, u := range all {
		m.add(u.Framework, u.Status)
	}
	if len(all) > 0 {
		m.logger.Info("recovered unacknowledged status updates", "count", len(all))
	}
	return nil
}

func newUpdateManager(forward func(string, mesos.TaskStatus) error, retryMin time.Duration, logger *slog.Logger) *updateManager {
	if retryMin <= 0 {
		retryMin = defaultRetryMin
	}
	return &updateManager{forward: forward, retryMin: retryMin, logger: logger, streams: map[updateKey]*updateStream{}}
}

// add queues an update; it is sent at once (asynchronously: callers may hold
// the agent's lock, which forwarding takes) if nothing is ahead of it. An
// update already queued (same uuid, as on an executor's re-subscription) is
// ignored.
func (m *updateManager) add(fw string, st mesos.TaskStatus) {
	k := updateKey{fw, st.TaskID.Value}
	m.mu.Lock()
	s := m.streams[k]
	if s == nil {
		s = &updateStream{}
		m.streams[k] = s
		m.order = append(m.order, k)
	}
	for _, p := range s.pending {
		if bytes.Equal(p.UUID, st.UUID) {
			m.mu.Unlock()
			return
		}
	}
	s.pending = append(s.pending, st)
	head := len(s.pending) == 1
	m.persistLocked()
	m.mu.Unlock()
	if head {
		go m.send(k)
	}
}

func (m *updateManager) send(k updateKey) {
	m.mu.Lock()
	s := m.streams[k]
	if s == nil || len(s.pending) == 0 {
		m.mu.Unlock()
		return
	}
	st := s.pending[0]
	s.sentAt = time.Now()
	if s.interval == 0 {
		s.interval = m.retryMin
	}
	m.mu.Unlock()
	if err := m.forward(k.fw, st); err != nil {
		m.logger.Debug("status update not delivered; will retry", "task", k.task, "err", err)
	}
}

// acknowledge pops the task's head update if uuid matches it and sends the next.
func (m *updateManager) acknowledge(fw, task string, uuid []byte) {
	k := updateKey{fw, task}
	m.mu.Lock()
	s := m.streams[k]
	if s == nil || len(s.pending) == 0 || !bytes.Equal(s.pending[0].UUID, uuid) {
		m.mu.Unlock()
		return // a duplicate or stale acknowledgement
	}
	s.pending = s.pending[1:]
	s.interval = 0
	more := len(s.pending) > 0
	if !more {
		delete(m.streams, k)
		for i, x := range m.order {
			if x == k {
				m.order = append(m.order[:i], m.order[i+1:]...)
				break
			}
		}
	}
	m.persistLocked()
	m.mu.Unlock()
	if more {
		m.send(k)
	}
}

// dropFramework forgets the pending updates of a framework that is gone
// (torn down, or past its failover timeout): nobody will acknowledge them,
// as Mesos' status update manager cleans up a removed framework's streams.
func (m *updateManager) dropFramework(fw string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.order[:0]
	for _, k := range m.order {
		if k.fw == fw {
			delete(m.streams, k)
			continue
		}
		kept = append(kept, k)
	}
	m.order = kept
	m.persistLocked()
}

// resendAll sends every head at once (after re-registering with a master).
func (m *updateManager) resendAll() {
	m.mu.Lock()
	keys := make([]updateKey, 0, len(m.streams))
	for k := range m.streams {
		keys = append(keys, k)
	}
	m.mu.Unlock()
	for _, k := range keys {
		m.send(k)
	}
}

func (m *updateManager) retryLoop(ctx context.Context) {
	t := time.NewTicker(min(500*time.Millisecond, m.retryMin/2))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var due []updateKey
		m.mu.Lock()
		for k, s := range m.streams {
			if len(s.pending) > 0 && time.Since(s.sentAt) >= s.interval {
				s.interval = min(s.interval*2, retryMax)
				due = append(due, k)
			}
		}
		m.mu.Unlock()
		for _, k := range due {
			m.send(k)
		}
	}
}
