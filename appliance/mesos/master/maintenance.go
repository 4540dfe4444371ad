package master

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler"
)

// Maintenance, as in Mesos: operators POST a schedule of windows during
// which machines will be unavailable. Machines in the schedule are
// DRAINING: offers for their agents carry the window as `unavailability`,
// so that frameworks (Aurora among them) can move work away. POSTing
// machines to /master/machine/down makes them DOWN: their offers are
// rescinded, no more are made, and their tasks are killed. /machine/up
// brings them back and takes them out of the schedule.

type machineMode int

const (
	machineDraining machineMode = iota
	machineDown
)

// machineKey normalises a MachineID as Mesos does (hostnames are
// case-insensitive).
func machineKey(id mesos.MachineID) string {
	return strings.ToLower(id.GetHostname()) + "|" + id.GetIP()
}

func (m *Master) registerMaintenance(mux *http.ServeMux) {
	for _, p := range []string{"/master/maintenance/schedule", "/maintenance/schedule"} {
		mux.HandleFunc(p, m.serveSchedule)
	}
	for _, p := range []string{"/master/maintenance/status", "/maintenance/status"} {
		mux.HandleFunc(p, m.serveMaintenanceStatus)
	}
	for _, p := range []string{"/master/machine/down", "/machine/down"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { m.serveMachines(w, r, true) })
	}
	for _, p := range []string{"/master/machine/up", "/machine/up"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { m.serveMachines(w, r, false) })
	}
}

func (m *Master) serveSchedule(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		m.mu.Lock()
		sched := m.schedule
		m.mu.Unlock()
		if sched.Windows == nil {
			sched.Windows = []maintenance.Window{}
		}
		mesosutil.WriteJSON(w, &sched)
	case http.MethodPost:
		var sched maintenance.Schedule
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err == nil {
			err = json.Unmarshal(body, &sched)
		}
		if err != nil {
			http.Error(w, "Failed to parse the maintenance schedule: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := m.SetSchedule(sched); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "Expecting 'GET' or 'POST'", http.StatusMethodNotAllowed)
	}
}

// operatorErrorf builds an error whose text is what Mesos puts in the body of a
// 400 response. Mesos capitalises these messages and clients match on them, so
// they keep Mesos' wording rather than Go's lower-case convention.
func operatorErrorf(format string, args ...any) error {
	return operatorError(fmt.Sprintf(format, args...))
}

type operatorError string

func (e operatorError) Error() string { return string(e) }

// validMachine checks a MachineID as Mesos' maintenance validation does.
func validMachine(id mesos.MachineID) error {
	if id.GetHostname() == "" && id.GetIP() == "" {
		return operatorErrorf("Both 'hostname' and 'ip' for a machine are empty")
	}
	if ip := id.GetIP(); ip != "" && net.ParseIP(ip) == nil {
		return operatorErrorf("Invalid IP address '%s'", ip)
	}
	return nil
}

// SetSchedule replaces the maintenance schedule.
func (m *Master) SetSchedule(sched maintenance.Schedule) error {
	seen := map[string]bool{}
	for _, win := range sched.Windows {
		if len(win.MachineIDs) == 0 {
			return operatorErrorf("List of machines in the maintenance window is empty")
		}
		if d := win.Unavailability.Duration; d != nil && d.Nanoseconds < 0 {
			return operatorErrorf("Unavailability duration is negative")
		}
		for _, id := range win.MachineIDs {
			if err := validMachine(id); err != nil {
				return err
			}
			k := machineKey(id)
			if seen[k] {
				return operatorErrorf("Machine '%s' appears more than once in the schedule", id.String())
			}
			seen[k] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, mode := range m.machines {
		if mode == machineDown && !seen[k] {
			return operatorErrorf("Machine '%s' is deactivated and cannot be removed from the schedule", strings.ReplaceAll(k, "|", "/"))
		}
	}
	m.schedule = sched
	next := map[string]machineMode{}
	for k := range seen {
		if m.machines[k] == machineDown {
			next[k] = machineDown
		} else {
			next[k] = machineDraining
		}
	}
	m.machines = next
	// Outstanding offers lack (or have stale) unavailability: replace them.
	for _, o := range m.offers {
		m.removeOfferLocked(o)
		if fw := m.frameworks[o.fw]; fw != nil {
			fw.send(rescindEvent(o.id))
		}
	}
	m.cfg.Logger.Info("maintenance schedule updated", "windows", len(sched.Windows), "machines", len(next))
	m.syncInverseOffersLocked()
	m.allocateLocked()
	return nil
}

// agentMachine finds the scheduled machine an agent runs on, if any.
func (m *Master) agentMachine(a *agent) (string, *mesos.Unavailability) {
	ip := ""
	if at := strings.LastIndexByte(a.pid, '@'); at >= 0 {
		ip, _, _ = net.SplitHostPort(a.pid[at+1:])
	}
	for i := range m.schedule.Windows {
		win := &m.schedule.Windows[i]
		for _, id := range win.MachineIDs {
			if (id.GetHostname() == "" || strings.EqualFold(id.GetHostname(), a.info.Hostname)) &&
				(id.GetIP() == "" || id.GetIP() == ip) {
				return machineKey(id), &win.Unavailability
			}
		}
	}
	return "", nil
}

// agentDown reports whether an agent's machine is DOWN.
func (m *Master) agentDown(a *agent) bool {
	k, _ := m.agentMachine(a)
	return k != "" && m.machines[k] == machineDown
}

func (m *Master) serveMachines(w http.ResponseWriter, r *http.Request, down bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "Expecting 'POST'", http.StatusMethodNotAllowed)
		return
	}
	var ids []mesos.MachineID
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &ids)
	}
	if err != nil {
		http.Error(w, "Failed to parse the list of machines: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := m.SetMachinesDown(ids, down); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// SetMachinesDown moves scheduled machines to DOWN (down) or back UP.
func (m *Master) SetMachinesDown(ids []mesos.MachineID, down bool) error {
	if len(ids) == 0 {
		return operatorErrorf("List of machines is empty")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if err := validMachine(id); err != nil {
			return err
		}
		mode, ok := m.machines[machineKey(id)]
		switch {
		case down && !ok:
			return operatorErrorf("Machine '%s' is not part of a maintenance schedule", id.String())
		case down && mode == machineDown:
			return operatorErrorf("Machine '%s' is already deactivated", id.String())
		case !down && (!ok || mode != machineDown):
			return operatorErrorf("Machine '%s' is not in DOWN mode and cannot be brought up", id.String())
		}
	}
	for _, id := range ids {
		k := machineKey(id)
		if down {
			m.machines[k] = machineDown
			continue
		}
		// Up: out of DOWN and out of the schedule.
		delete(m.machines, k)
		for i := range m.schedule.Windows {
			win := &m.schedule.Windows[i]
			kept := win.MachineIDs[:0]
			for _, x := range win.MachineIDs {
				if machineKey(x) != k {
					kept = append(kept, x)
				}
			}
			win.MachineIDs = kept
		}
		windows := m.schedule.Windows[:0]
		for _, win := range m.schedule.Windows {
			if len(win.MachineIDs) > 0 {
				windows = append(windows, win)
			}
		}
		m.schedule.Windows = windows
	}
	if down {
		for _, a := range m.agents {
			if !m.agentDown(a) {
				continue
			}
			for _, o := range m.offers {
				if o.agent == a.id {
					m.removeOfferLocked(o)
					if fw := m.frameworks[o.fw]; fw != nil {
						fw.send(rescindEvent(o.id))
					}
				}
			}
			m.killAgentTasksLocked(a)
		}
		m.cfg.Logger.Info("machines down", "machines", len(ids))
	} else {
		m.cfg.Logger.Info("machines up", "machines", len(ids))
		m.syncInverseOffersLocked()
		m.allocateLocked()
	}
	return nil
}

// killAgentTasksLocked kills every live task on a's agent (machine down).
func (m *Master) killAgentTasksLocked(a *agent) {
	if a.link == nil {
		return
	}
	for _, fw := range m.frameworks {
		for _, t := range fw.tasks {
			if t.agent == a.id && !mesosutil.IsTerminal(t.state) {
				a.link.Kill(mesos.FrameworkID{Value: fw.id}, t.info.TaskID)
			}
		}
	}
}

func (m *Master) serveMaintenanceStatus(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	var draining, down []map[string]any
	keys := make([]string, 0, len(m.machines))
	for k := range m.machines {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		host, ip, _ := strings.Cut(k, "|")
		id := map[string]any{}
		if host != "" {
			id["hostname"] = host
		}
		if ip != "" {
			id["ip"] = ip
		}
		if m.machines[k] == machineDown {
			down = append(down, id)
		} else {
			draining = append(draining, map[string]any{"id": id, "statuses": m.inverseStatusesLocked(k)})
		}
	}
	m.mu.Unlock()
	out := map[string]any{}
	if len(draining) > 0 {
		out["draining_machines"] = draining
	}
	if len(down) > 0 {
		out["down_machines"] = down
	}
	mesosutil.WriteJSON(w, out)
}

// Inverse offers, as in Mesos: a framework with tasks on an agent whose
// machine is in a maintenance window is sent an INVERSE_OFFERS event carrying
// the window, asking it to move its work away. Its answer (ACCEPT or
// DECLINE_INVERSE_OFFERS) is recorded and shown in /maintenance/status; the
// inverse offer is rescinded when the window goes away.

type inverseOffer struct {
	id      string
	fw      string
	agent   string
	machine string
	unavail mesos.Unavailability
}

type inverseAnswer struct {
	accepted bool
	at       time.Time
}

type inverseBook struct {
	next    int
	offers  map[string]*inverseOffer            // by id
	answers map[string]map[string]inverseAnswer // machine key → framework → last answer
}

func (m *Master) inverseLocked() *inverseBook {
	if m.inverse == nil {
		m.inverse = &inverseBook{offers: map[string]*inverseOffer{}, answers: map[string]map[string]inverseAnswer{}}
	}
	return m.inverse
}

// syncInverseOffersLocked rescinds the inverse offers whose agent is out of
// the schedule (or whose window changed) and sends one to each connected
// framework with live tasks on a scheduled agent that has none outstanding.
func (m *Master) syncInverseOffersLocked() {
	book := m.inverseLocked()
	for id, inv := range book.offers {
		a := m.agents[inv.agent]
		var k string
		var u *mesos.Unavailability
		if a != nil {
			k, u = m.agentMachine(a)
		}
		if u != nil && k == inv.machine && u.Equal(&inv.unavail) {
			continue
		}
		delete(book.offers, id)
		if fw := m.frameworks[inv.fw]; fw != nil {
			fw.send(&scheduler.Event{Type: scheduler.Event_RESCIND_INVERSE_OFFER,
				RescindInverseOffer: &scheduler.Event_RescindInverseOffer{InverseOfferID: mesos.OfferID{Value: id}}})
		}
	}
	for k := range book.answers {
		if _, ok := m.machines[k]; !ok {
			delete(book.answers, k)
		}
	}
	outstanding := map[[2]string]bool{}
	for _, inv := range book.offers {
		outstanding[[2]string{inv.fw, inv.agent}] = true
	}
	for _, aid := range m.agentOrder {
		a := m.agents[aid]
		if a == nil {
			continue
		}
		k, u := m.agentMachine(a)
		if u == nil {
			continue
		}
		for _, fw := range m.frameworks {
			if fw.sub == nil || outstanding[[2]string{fw.id, aid}] || !hasLiveTask(fw, aid) {
				continue
			}
			inv := &inverseOffer{id: fmt.Sprintf("%s-I%d", m.id, book.next), fw: fw.id, agent: aid, machine: k, unavail: *u}
			book.next++
			book.offers[inv.id] = inv
			fw.send(&scheduler.Event{Type: scheduler.Event_INVERSE_OFFERS, InverseOffers: &scheduler.Event_InverseOffers{
				InverseOffers: []mesos.InverseOffer{{
					OfferID:        mesos.OfferID{Value: inv.id},
					FrameworkID:    mesos.FrameworkID{Value: fw.id},
					AgentID:        &mesos.AgentID{Value: aid},
					Unavailability: inv.unavail,
				}},
			}})
			m.cfg.Logger.Info("inverse offer sent", "framework", fw.id, "agent", aid, "inverse_offer", inv.id)
		}
	}
}

func hasLiveTask(fw *framework, agentID string) bool {
	for _, t := range fw.tasks {
		if t.agent == agentID && !mesosutil.IsTerminal(t.state) {
			return true
		}
	}
	return false
}

// dropInverseOffersLocked forgets a framework's outstanding inverse offers
// (its stream is gone: they are sent again when it subscribes).
func (m *Master) dropInverseOffersLocked(fwID string) {
	book := m.inverseLocked()
	for id, inv := range book.offers {
		if inv.fw == fwID {
			delete(book.offers, id)
		}
	}
}

// answerInverseOffersLocked records a framework's ACCEPT or DECLINE of its
// inverse offers; unknown ids are ignored, as Mesos does.
func (m *Master) answerInverseOffersLocked(fw *framework, ids []mesos.OfferID, accepted bool) {
	book := m.inverseLocked()
	for _, id := range ids {
		inv := book.offers[id.Value]
		if inv == nil || inv.fw != fw.id {
			continue
		}
		delete(book.offers, id.Value)
		if book.answers[inv.machine] == nil {
			book.answers[inv.machine] = map[string]inverseAnswer{}
		}
		book.answers[inv.machine][fw.id] = inverseAnswer{accepted: accepted, at: m.cfg.Now()}
		m.cfg.Logger.Info("inverse offer answered", "framework", fw.id, "agent", inv.agent, "accepted", accepted)
	}
}

// inverseStatusesLocked is inverseOfferStatusesLocked (operator.go) in
// the JSON of /maintenance/status.
func (m *Master) inverseStatusesLocked(machine string) []any {
	out := []any{}
	for _, s := range m.inverseOfferStatusesLocked(machine) {
		out = append(out, map[string]any{
			"status":       s.GetStatus().String(),
			"framework_id": map[string]any{"value": s.FrameworkID.Value},
			"timestamp":    map[string]any{"nanoseconds": s.Timestamp.Nanoseconds},
		})
	}
	return out
}
