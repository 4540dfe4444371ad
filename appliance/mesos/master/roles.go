package master

import (
	"net/http"

	"github.com/aurorabox/aurorabox/appliance/mesos/mesosutil"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
)

// registerRoles serves Mesos' /master/roles (also /roles and the .json
// forms): every role that has a framework or a configured weight, with
// its weight, its frameworks' ids and what they hold. "resources" is
// offered plus allocated in Mesos 1.x's resource model; "allocated" (used
// by tasks), "offered" and "reserved" (always empty: no reservations) are
// the scalar quantities Mesos 1.9 added beside it.
func (m *Master) registerRoles(mux *http.ServeMux) {
	for _, p := range []string{"/master/roles", "/roles", "/master/roles.json", "/roles.json"} {
		mux.HandleFunc(p, m.serveRoles)
	}
}

func (m *Master) serveRoles(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	roles := m.alloc.Roles()
	m.mu.Unlock()
	out := make([]map[string]any, 0, len(roles))
	for _, role := range roles {
		out = append(out, map[string]any{
			"name":       role.Name,
			"weight":     role.Weight,
			"frameworks": role.Frameworks,
			"resources":  mesosutil.ResourcesJSON(role.Allocated.Plus(role.Offered...)),
			"allocated":  quantities(role.Allocated),
			"offered":    quantities(role.Offered),
			"reserved":   map[string]float64{},
		})
	}
	mesosutil.WriteJSON(w, map[string]any{"roles": out})
}

// quantities sums the scalar resources by name, as Mesos'
// ResourceQuantities are written.
func quantities(rs mesos.Resources) map[string]float64 {
	out := map[string]float64{}
	for _, r := range rs {
		if r.Scalar != nil {
			out[r.Name] += r.Scalar.Value
		}
	}
	return out
}
