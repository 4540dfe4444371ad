package scheduler

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/aurorabox/aurorabox/scheduler/api"
	"github.com/aurorabox/aurorabox/scheduler/match"
	"github.com/aurorabox/aurorabox/scheduler/state"
	"github.com/aurorabox/aurorabox/scheduler/storage"
)

// Tiers and quota, as Aurora's tiers.json (§8.1) and QuotaManager (§8.3).

// tier is one of Aurora's tiers.
type tier struct{ preemptible, revocable bool }

// tiers is Aurora's default tiers.json; tierOrder lists them in the order
// the client's back-filling walks them.
var (
	tiers = map[string]tier{
		"preferred":   {preemptible: false, revocable: false},
		"preemptible": {preemptible: true, revocable: false},
		"revocable":   {preemptible: true, revocable: true},
	}
	tierOrder = []string{"preferred", "preemptible", "revocable"}
)

// defaultTier is the tier of a task that names none and is not production.
const defaultTier = "preemptible"

// populateTier checks the task's tier and fills in the tier or the
// production flag from the other, as Aurora's ThriftBackfill: a named tier
// decides production (neither preemptible nor revocable); without one, the
// first non-revocable tier whose preemptibility matches production.
func populateTier(tc *api.TaskConfig) error {
	if tc.Tier != "" {
		t, ok := tiers[tc.Tier]
		if !ok {
			return invalid("Invalid tier '%s' in TaskConfig (tiers: %s).", tc.Tier, strings.Join(tierOrder, ", "))
		}
		tc.Production = !t.preemptible && !t.revocable
		return nil
	}
	for _, name := range tierOrder {
		if t := tiers[name]; t.preemptible == !tc.Production && !t.revocable {
			tc.Tier = name
			return nil
		}
	}
	tc.Tier = defaultTier
	return nil
}

// tierConfigs is getTierConfigs' result.
func tierConfigs() *api.GetTierConfigResult {
	res := &api.GetTierConfigResult{DefaultTierName: defaultTier}
	for _, name := range tierOrder {
		t := tiers[name]
		res.Tiers = append(res.Tiers, api.TierConfig{Name: name, Settings: map[string]string{
			"preemptible": fmt.Sprint(t.preemptible), "revocable": fmt.Sprint(t.revocable),
		}})
	}
	return res
}

// dedicated reports whether a task asks for dedicated hosts.
func dedicated(tc api.TaskConfig) bool {
	for _, c := range tc.Constraints {
		if c.Name == match.DedicatedAttribute {
			return true
		}
	}
	return false
}

// taskAggregate is a task's own resources (quota counts no executor
// overhead, as Aurora's).
func taskAggregate(tc api.TaskConfig, instances int) api.ResourceAggregate {
	cpus, ram, disk, _ := tc.Scalars()
	n := int64(instances)
	return api.ResourceAggregate{NumCpus: cpus * float64(instances), RAMMb: ram * n, DiskMb: disk * n}
}

// quotaInfo is a role's quota and its active tasks' consumption by pool.
// The caller holds s.mu.
func (s *Scheduler) quotaInfo(role string) api.GetQuotaResult {
	res := api.GetQuotaResult{Quota: s.quotas[role]}
	for _, t := range s.tasks {
		tc := t.AssignedTask.Task
		if tc.Job.Role != role {
			continue
		}
		if st, _ := state.ParseStatus(t.Status); !st.Active() {
			continue
		}
		a := taskAggregate(tc, 1)
		switch prod, ded := tc.Production, dedicated(tc); {
		case prod && !ded:
			res.ProdSharedConsumption = res.ProdSharedConsumption.Add(a)
		case prod:
			res.ProdDedicatedConsumption = res.ProdDedicatedConsumption.Add(a)
		case !ded:
			res.NonProdSharedConsumption = res.NonProdSharedConsumption.Add(a)
		default:
			res.NonProdDedicatedConsumption = res.NonProdDedicatedConsumption.Add(a)
		}
	}
	res.Quota = res.Quota.Normalize()
	res.ProdSharedConsumption = res.ProdSharedConsumption.Normalize()
	res.ProdDedicatedConsumption = res.ProdDedicatedConsumption.Normalize()
	res.NonProdSharedConsumption = res.NonProdSharedConsumption.Normalize()
	res.NonProdDedicatedConsumption = res.NonProdDedicatedConsumption.Normalize()
	return res
}

// checkQuota refuses adding instances of a production task on shared hosts
// beyond the role's quota (QuotaManager.checkInstanceAddition); other tasks
// are not checked. The caller holds s.mu.
func (s *Scheduler) checkQuota(tc api.TaskConfig, instances int) error {
	if !tc.Production || dedicated(tc) {
		return nil
	}
	info := s.quotaInfo(tc.Job.Role)
	want := info.ProdSharedConsumption.Add(taskAggregate(tc, instances))
	if d := quotaShortfall(info.Quota, want); d != "" {
		return invalid("Insufficient resource quota: %s", d)
	}
	return nil
}

// quotaShortfall describes how far want exceeds quota, in Aurora's words
// (QuotaCheckResult), or is "" when it does not.
func quotaShortfall(quota, want api.ResourceAggregate) string {
	var parts []string
	if want.NumCpus > quota.NumCpus+1e-9 {
		parts = append(parts, fmt.Sprintf("CPU quota exceeded by %.2f core(s)", want.NumCpus-quota.NumCpus))
	}
	if want.RAMMb > quota.RAMMb {
		parts = append(parts, fmt.Sprintf("RAM quota exceeded by %.2f MB", float64(want.RAMMb-quota.RAMMb)))
	}
	if want.DiskMb > quota.DiskMb {
		parts = append(parts, fmt.Sprintf("DISK quota exceeded by %.2f MB", float64(want.DiskMb-quota.DiskMb)))
	}
	return strings.Join(parts, "; ")
}

// Quota is getQuota.
func (s *Scheduler) Quota(role string) (api.GetQuotaResult, error) {
	if strings.TrimSpace(role) == "" {
		return api.GetQuotaResult{}, invalid("ownerRole must not be empty.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.quotaInfo(role), nil
}

// SetQuota is setQuota: it overwrites the role's quota, durably. As in
// Aurora, amounts may not be negative nor below what the role's production
// tasks already use.
func (s *Scheduler) SetQuota(role string, q *api.ResourceAggregate) error {
	if strings.TrimSpace(role) == "" {
		return invalid("ownerRole must not be empty.")
	}
	if q == nil {
		return invalid("quota must be set.")
	}
	quota := q.Normalize()
	if quota.NumCpus < 0 || quota.RAMMb < 0 || quota.DiskMb < 0 {
		return invalid("Negative values in: %s", quota)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prod := s.quotaInfo(role).ProdSharedConsumption
	if quotaShortfall(quota, prod) != "" {
		return invalid("Quota: %s is less than the current prod reservation: %s", quota, prod)
	}
	data, err := json.Marshal(quota)
	if err != nil {
		return err
	}
	if err := s.store.Update(func(w *storage.Writer) error { return w.SetQuota(role, data) }); err != nil {
		return err
	}
	s.quotas[role] = quota
	s.log.Info("quota set", "role", role, "quota", quota.String())
	return nil
}

// serveQuotas is /quotas: role → quota, all roles or ?role=.
func (s *Scheduler) serveQuotas(w http.ResponseWriter, r *http.Request) {
	role := r.URL.Query().Get("role")
	s.mu.Lock()
	out := map[string]api.ResourceAggregate{}
	for rl, q := range s.quotas {
		if role == "" || rl == role {
			out[rl] = q
		}
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

// serveTiers is /tiers: {"default": ..., "tiers": {name: settings}}.
func (s *Scheduler) serveTiers(w http.ResponseWriter, r *http.Request) {
	type settings struct {
		Preemptible bool `json:"preemptible"`
		Revocable   bool `json:"revocable"`
	}
	out := struct {
		Default string              `json:"default"`
		Tiers   map[string]settings `json:"tiers"`
	}{Default: defaultTier, Tiers: map[string]settings{}}
	for name, t := range tiers {
		out.Tiers[name] = settings{t.preemptible, t.revocable}
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	enc.Encode(v)
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
