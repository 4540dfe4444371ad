// Package match is the Aurora scheduler's offer matcher: it decides which
// pending tasks go onto which Mesos offers, and says why a task could not be
// placed, with the same veto reasons as Apache Aurora's SchedulingFilter.
//
// It is pure logic: no I/O, no goroutines, no clock (the caller passes the
// time in Matcher.Now), no randomness that is not derived from
// Matcher.PortSeed. The same input always gives the same output. It uses
// plain types of its own (Offer, Request, Assignment), which the caller
// converts from and to Mesos protobufs and the task store.
//
// # Filtering
//
// Matcher.Filter checks one offer against one request and returns the vetoes,
// empty when the task fits. Like Aurora's SchedulingFilterImpl, checks are
// made in groups from the strongest to the weakest, and the first group that
// vetoes is the only one reported:
//
//  1. dedicated: an agent with a "dedicated" attribute takes only tasks that
//     carry a "dedicated" constraint ("Host is dedicated");
//  2. maintenance: hosts in DRAINING or DRAINED maintenance ("Host draining
//     for maintenance", "Host drained for maintenance"), and hosts whose Mesos
//     unavailability starts within Matcher.UnavailabilityThreshold (reported
//     as draining);
//  3. constraints, value constraints before limit constraints, stopping at the
//     first that fails ("Constraint not satisfied: NAME", "Limit not
//     satisfied: NAME");
//  4. resources, every one that is short ("Insufficient: CPU", "Insufficient:
//     RAM", "Insufficient: disk", "Insufficient: ports").
//
// A request needs its own resources plus the executor Overhead (Aurora adds
// 0.25 CPU and 128 MB for Thermos; aurorabox's executor is smaller, see
// DefaultOverhead).
//
// # Constraints
//
// ParseConstraints reads the constraints map of a .aurora job the way the
// Aurora client does: "limit:N" is a limit constraint (at most N active tasks
// of the job per distinct value of the attribute), anything else is a comma
// separated list of values, negated by a leading "!". A value constraint
// matches when the host has any of the values (or, negated, none of them). A
// limit constraint needs the host to have the attribute at all.
//
// The "dedicated" attribute is special. A task's dedicated constraint must be
// a single value "ROLE/NAME" whose ROLE is the job's role or "*"
// (ValidateDedicated, which Aurora applies when a job is created; Filter
// treats a constraint that breaks this rule as never satisfied). It then
// matches hosts whose dedicated attribute has exactly that value.
//
// Every host has a "host" attribute: the agent's own if it declares one,
// otherwise its hostname, so that {"host": "limit:1"} works on agents started
// without attributes.
//
// # Assigning
//
// Matcher.Assign runs one scheduling round: it walks the pending requests in
// the order given and puts each on the first offer that fits (Aurora's
// first-fit selector), in Aurora's offer order: hosts in no maintenance
// first, then SCHEDULED, then those whose Mesos unavailability starts later,
// then input order. Unlike Aurora, which launches one task per offer and
// waits for the remainder to be offered again, one offer can take several
// tasks: the matcher subtracts each task's resources and ports from the offer
// and keeps counting the job's tasks per attribute value (AttributeAggregate),
// so limit constraints hold across the tasks placed in the same round.
//
// Named ports are given concrete numbers from the offer's ranges, in sorted
// name order: the lowest free ports, or, with a non-zero PortSeed, ports drawn
// from a generator seeded by PortSeed and the task id (Aurora draws at
// random).
//
// For each task left pending Assign reports the vetoes of its nearest fit:
// the offer whose vetoes have the lowest total score, as Aurora's NearestFit
// does, evaluated against what was left of the offers at the end of the
// round.
package match
