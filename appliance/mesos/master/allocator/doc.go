// Package allocator decides which framework is offered which agent's free
// resources, as Mesos' hierarchical allocator does with its DRF sorters:
// roles first, by weighted dominant share, then the frameworks of the
// chosen role, by dominant share. It also keeps the refuse filters that
// DECLINE and ACCEPT leave behind, the SUPPRESS/REVIVE state of each
// framework and the outstanding offers with their age, so that offers a
// framework sits on can be rescinded after an offer timeout.
//
// Like scheduler/state and scheduler/update it does no I/O, reads no clock
// and starts no goroutines: every call that depends on time takes now, and
// the master around it sends the events and arms the one timer.
//
// # The master's loop
//
//	e := allocator.New(allocator.Config{Weights: w, OfferTimeout: t, DefaultRefuse: 5 * time.Second, OfferIDPrefix: id + "-O"})
//	// Facts, as they happen:
//	e.AddAgent(id, total); e.SetAgentActive(id, connected && !down)
//	e.AddFramework(id, role, revocable); e.SetFrameworkActive(id, connected)
//	e.Suppress(fw); e.Revive(fw); e.RemoveFramework(fw)
//	e.Allocated(fw, agent, res)         // tasks the master learnt of without an offer
//	e.Recover(fw, agent, res)           // a task ended
//	e.Decline(now, offer, filters)      // DECLINE
//	e.Accept(now, offers, used, filters) // ACCEPT: used stays, the rest is refused
//	e.Rescind(offer)                    // the master withdrew an offer itself
//	// Then, and whenever the deadline is reached:
//	for _, o := range e.Expire(now) { send RESCIND for o.ID }
//	for _, o := range e.Allocate(now) { send OFFERS (grouped by o.Framework) }
//	arm one timer for e.Next() (zero: none needed)
//
// # Rules
//
// Allocate walks the active agents in the order they were added. For each
// one with free resources (total minus what is offered or used) it picks a
// framework: roles that have an active, unsuppressed framework are sorted
// by dominant share divided by weight, then by how many times the role was
// chosen, then by name; within the first role the frameworks likewise by
// dominant share, times chosen and id (Mesos' DRF comparison). A dominant
// share is the largest fraction, over the scalar resources of all agents
// (cpus, mem, disk, gpus, ...), that the role or framework holds, offered
// or in use. The first framework, in that order, that the agent is not
// filtered for gets everything it may take there in one offer; only
// frameworks with the REVOCABLE_RESOURCES capability take revocable
// resources, and what is left (revocable resources the chosen framework
// cannot take) goes to the next framework in order. Shares change with
// every offer, so the next agent goes to the framework that is now lowest.
//
// A refuse filter is set by DECLINE and by the unused part of an ACCEPT:
// refuse_seconds of their Filters, or Config.DefaultRefuse when they carry
// none (Mesos' Filters default, 5 s); a negative value takes the default,
// more than 365 days is cut to 365 days, and 0 sets no filter. A filter
// keeps the agent's resources from that framework only, until it expires,
// and only while what the agent could offer the framework is contained in
// what it refused (so freed resources are offered again at once, as in
// Mesos). REVIVE clears a framework's filters and its suppression;
// SUPPRESS keeps all offers from it until REVIVE (or a new SUBSCRIBE).
//
// With Config.OfferTimeout above zero, Expire removes the offers older than
// that and returns them: their resources are free again without a filter,
// and the master rescinds them. Next is the earliest time at which Expire
// or Allocate could do something new: a filter expiring or an offer timing
// out.
//
// # Differences from Mesos
//
// Allocation runs on every change instead of on a 1 s batch interval, and
// agents are walked in a fixed order instead of a random one. There are no
// quotas, reservations, hierarchical roles or multi-role frameworks: a
// framework is in one role (FrameworkInfo.role, or its first roles entry).
package allocator
