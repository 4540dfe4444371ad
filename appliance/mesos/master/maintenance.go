package master

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/maintenance"
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
			draining = append(draining, map[string]any{"id": id, "statuses": []any{}})
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
