package scheduler

import (
	"context"

	"github.com/aurorabox/aurorabox/scheduler/state"
	mesos "github.com/mesos/mesos-go/api/v1/lib"
	"github.com/mesos/mesos-go/api/v1/lib/scheduler/calls"
)

// Inverse offers (§8.7): the Mesos master sends one for each agent in a
// maintenance window where the framework has tasks. As Aurora's
// MaintenanceController.drainForInverseOffer, the scheduler drains the
// agent's host: its active tasks go DRAINING (killed, then replaced by
// PENDING tasks). The host's maintenance mode is left alone: replacements
// stay off it because its offers carry the window and are vetoed once the
// window starts within UnavailabilityThreshold. The inverse offers are then
// accepted, telling the master the framework is moving its work away.

// onInverseOffers drains the inverse offers' hosts and accepts them.
func (s *Scheduler) onInverseOffers(ctx context.Context, offers []mesos.InverseOffer) {
	if len(offers) == 0 {
		return
	}
	ids := make([]mesos.OfferID, 0, len(offers))
	for _, o := range offers {
		s.drainForInverseOffer(ctx, o)
		ids = append(ids, o.OfferID)
	}
	s.send(ctx, calls.AcceptInverseOffers(ids...))
}

// drainForInverseOffer moves the active tasks off an inverse offer's agent
// through DRAINING.
func (s *Scheduler) drainForInverseOffer(ctx context.Context, o mesos.InverseOffer) {
	agent := o.GetAgentID().GetValue()
	s.mu.Lock()
	host := s.agentHost(agent)
	if host == "" {
		s.mu.Unlock()
		s.log.Error("cannot drain for an inverse offer: agent's host unknown", "agent", agent, "inverse_offer", o.OfferID.Value)
		return
	}
	tx := s.begin()
	var drained []string
	for _, id := range s.activeOnHost(host) {
		if tx.transition(id, state.Draining, drainingMessage) != state.Illegal {
			drained = append(drained, id)
		}
	}
	err := tx.commit()
	s.mu.Unlock()
	if err != nil {
		s.log.Error("draining for an inverse offer failed", "host", host, "err", err)
		return
	}
	s.log.Info("draining host for a Mesos maintenance window", "host", host, "agent", agent,
		"start", o.Unavailability.Start.Nanoseconds, "tasks", drained)
	s.sendKills(ctx, tx.kills)
	s.wake()
}

// agentHost is the hostname of an agent, from the tasks placed on it or the
// offers held from it; "" when unknown. The caller holds s.mu.
func (s *Scheduler) agentHost(agent string) string {
	if agent == "" {
		return ""
	}
	for _, t := range s.tasks {
		if t.AssignedTask.SlaveID == agent && t.AssignedTask.SlaveHost != "" {
			return t.AssignedTask.SlaveHost
		}
	}
	for _, h := range s.offers {
		if h.offer.AgentID.Value == agent {
			return h.offer.Hostname
		}
	}
	return ""
}
