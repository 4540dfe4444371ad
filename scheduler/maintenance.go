package scheduler

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
)

// Host maintenance (§8.7, Aurora's MaintenanceController): a host is in
// NONE, SCHEDULED (takes tasks only when hosts in NONE do not fit),
// DRAINING (its active tasks are moved off through the DRAINING state and
// it takes no new ones) or DRAINED (DRAINING with no active task left).
// Modes are stored with the task changes that cause them, and the matcher
// reads them from s.maintenance in every scheduling round.

// drainingMessage is Aurora's audit message for a task drained off a host.
const drainingMessage = "Draining machine for maintenance."

// knownHost reports whether the scheduler has heard of a host: from an
// offer, a task placed there, or a stored maintenance mode. As in Aurora,
// maintenance requests for unknown hosts are ignored. The caller holds s.mu.
func (s *Scheduler) knownHost(h string) bool {
	if _, ok := s.hosts[h]; ok {
		return true
	}
	if _, ok := s.maintenance[h]; ok {
		return true
	}
	for _, t := range s.tasks {
		if t.AssignedTask.SlaveHost == h {
			return true
		}
	}
	return false
}

// hostMode is a host's mode, NONE when it has none. The caller holds s.mu.
func (s *Scheduler) hostMode(h string) match.MaintenanceMode {
	if m, ok := s.maintenance[h]; ok {
		return m
	}
	return match.ModeNone
}

// activeOnHost are the ids of the active tasks placed on a host, sorted.
// The caller holds s.mu.
func (s *Scheduler) activeOnHost(h string) []string {
	var ids []string
	for id, t := range s.tasks {
		if t.AssignedTask.SlaveHost != h {
			continue
		}
		if st, _ := state.ParseStatus(t.Status); st.Active() {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// settleDrains moves DRAINING hosts that have no active task left to
// DRAINED, in the batch. It runs at every commit, so the last task of a
// host ending (in whatever way) completes the drain.
func (tx *txn) settleDrains() {
	s := tx.s
	var draining []string
	for h, m := range s.maintenance {
		if m == match.ModeDraining {
			draining = append(draining, h)
		}
	}
	if len(draining) == 0 {
		return
	}
	busy := map[string]bool{}
	for _, t := range s.tasks {
		if h := t.AssignedTask.SlaveHost; h != "" && s.maintenance[h] == match.ModeDraining {
			if st, _ := state.ParseStatus(t.Status); st.Active() {
				busy[h] = true
			}
		}
	}
	for _, h := range draining {
		if !busy[h] {
			s.log.Info("host drained", "host", h)
			tx.setMaintenance(h, match.ModeDrained)
		}
	}
}

// hostSet returns the distinct non-empty host names asked for, sorted,
// split into the known and the unknown. The caller holds s.mu.
func (s *Scheduler) hostSet(hosts api.Hosts) (known, unknown []string, err error) {
	seen := map[string]bool{}
	for _, h := range hosts.HostNames {
		h = strings.TrimSpace(h)
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		if s.knownHost(h) {
			known = append(known, h)
		} else {
			unknown = append(unknown, h)
		}
	}
	if len(seen) == 0 {
		return nil, nil, invalid("No hosts given (hosts.hostNames is empty).")
	}
	sort.Strings(known)
	sort.Strings(unknown)
	return known, unknown, nil
}

func (s *Scheduler) statuses(hosts []string) []api.HostStatus {
	out := make([]api.HostStatus, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, api.HostStatus{Host: h, Mode: string(s.hostMode(h))})
	}
	return out
}

// unknownNote is the detail message naming ignored hosts.
func unknownNote(unknown []string) []string {
	if len(unknown) == 0 {
		return nil
	}
	return []string{"Unknown hosts ignored (never offered and no tasks there): " + strings.Join(unknown, ", ")}
}

// setModes gives hosts a mode in one stored batch, draining their tasks
// first when the mode is DRAINING, and returns the hosts' modes afterwards
// (a DRAINING host without active tasks is DRAINED at once).
func (s *Scheduler) setModes(ctx context.Context, hosts api.Hosts, mode match.MaintenanceMode) ([]api.HostStatus, []string, error) {
	s.mu.Lock()
	known, unknown, err := s.hostSet(hosts)
	if err != nil {
		s.mu.Unlock()
		return nil, nil, err
	}
	tx := s.begin()
	for _, h := range known {
		tx.setMaintenance(h, mode)
		if mode == match.ModeDraining {
			for _, id := range s.activeOnHost(h) {
				tx.transition(id, state.Draining, drainingMessage)
			}
		}
	}
	err = tx.commit()
	res := s.statuses(known)
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	s.log.Info("maintenance", "hosts", known, "mode", mode, "ignored", unknown)
	s.sendKills(ctx, tx.kills)
	s.wake()
	return res, unknownNote(unknown), nil
}

// StartMaintenance is startMaintenance: the hosts become SCHEDULED.
func (s *Scheduler) StartMaintenance(ctx context.Context, hosts api.Hosts) ([]api.HostStatus, []string, error) {
	return s.setModes(ctx, hosts, match.ModeScheduled)
}

// DrainHosts is drainHosts: the hosts become DRAINING and their active
// tasks DRAINING (killed, then replaced elsewhere); each host is DRAINED
// once none is left.
func (s *Scheduler) DrainHosts(ctx context.Context, hosts api.Hosts) ([]api.HostStatus, []string, error) {
	return s.setModes(ctx, hosts, match.ModeDraining)
}

// EndMaintenance is endMaintenance: the hosts are back in NONE.
func (s *Scheduler) EndMaintenance(ctx context.Context, hosts api.Hosts) ([]api.HostStatus, []string, error) {
	return s.setModes(ctx, hosts, match.ModeNone)
}

// MaintenanceStatus is maintenanceStatus: the known hosts' modes.
func (s *Scheduler) MaintenanceStatus(hosts api.Hosts) ([]api.HostStatus, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	known, unknown, err := s.hostSet(hosts)
	if err != nil {
		return nil, nil, err
	}
	return s.statuses(known), unknownNote(unknown), nil
}

// serveMaintenance is /maintenance: {"DRAINED": [hosts], "SCHEDULED":
// [hosts], "DRAINING": {host: [active task ids]}}.
func (s *Scheduler) serveMaintenance(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Drained   []string            `json:"DRAINED"`
		Scheduled []string            `json:"SCHEDULED"`
		Draining  map[string][]string `json:"DRAINING"`
	}{Drained: []string{}, Scheduled: []string{}, Draining: map[string][]string{}}
	s.mu.Lock()
	for _, h := range sortedKeys(s.maintenance) {
		switch s.maintenance[h] {
		case match.ModeDrained:
			out.Drained = append(out.Drained, h)
		case match.ModeScheduled:
			out.Scheduled = append(out.Scheduled, h)
		case match.ModeDraining:
			out.Draining[h] = orEmpty(s.activeOnHost(h))
		}
	}
	s.mu.Unlock()
	writeJSON(w, out)
}
