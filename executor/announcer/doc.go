// Package announcer is the Thermos executor's ServerSet announcer (Aurora's
// executor/common/announcer.py on twitter.common.zookeeper's ServerSet,
// §8.5 of the reference): it registers a service task's endpoints in
// ZooKeeper so that clients can find it, and keeps the registration alive
// until the task ends.
//
// The package has two layers:
//
//   - Endpoints is pure: it merges the job's Announcer portmap with the
//     ports the scheduler assigned, resolves aliases exactly as Aurora's
//     PortResolver does (see Endpoints for the rules, including cycles)
//     and picks the primary endpoint. Package serverset renders the
//     ServerSet member JSON that Finagle, twitter.common and Aurora's own
//     tooling parse.
//   - Start connects to ZooKeeper, creates the serverset path (persistent
//     ancestors as needed) and an EPHEMERAL_SEQUENTIAL member_<10-digit
//     sequence> znode holding the JSON, then keeps it registered: a
//     background goroutine watches the member znode and the session and
//     creates a new member as soon as the old one is gone, whether another
//     client deleted it or the session expired. Stop deletes the member and
//     closes the session.
//
// The executor wires it up roughly so:
//
//	primary, additional, err := announcer.Endpoints(*job.Announce, at.AssignedPorts, host)
//	if err != nil { ... TASK_FAILED ... }
//	path := announcer.ServerSetPath(serversetRoot, job.Role, job.Environment, job.Name) // or job.Announce.ZKPath
//	a, err := announcer.Start(ctx, announcer.Config{
//		Servers:        strings.Split(ensemble, ","),
//		Path:           path,
//		Member:         serverset.Marshal(serverset.Member{ServiceEndpoint: primary,
//			AdditionalEndpoints: additional, Status: serverset.Alive, Shard: &shard}),
//		ConnectTimeout: hc.InitialInterval + time.Duration(hc.MaxConsecutiveFailures)*hc.Interval,
//		Logger:         logger,
//	})
//	if errors.Is(err, announcer.ErrTimeout) { ... TASK_FAILED "Creating Announcer Serverset timed out." ... }
//	defer a.Stop()
//
// Where this implementation departs from Aurora's (deliberately):
//
//   - Start returns once the first member exists, so Path is valid and
//     configuration errors (no permission, an ephemeral parent, a bad path)
//     fail the task at once. Aurora only waits for the connection and joins
//     in the background, retrying forever. ConnectTimeout bounds both the
//     connection and the first registration.
//   - Aurora's kazoo exists-watch is one-shot and is not re-armed after a
//     data change; here the watch is re-armed after every event, so a later
//     deletion is always noticed.
//   - A create whose outcome is unknown (the connection dropped while it was
//     in flight) is resolved before trying again: if the session survived,
//     a member it owns with our data is adopted instead of creating a
//     duplicate.
//   - Before creating a member, stale members of other sessions are
//     deleted: those naming the same service endpoint (only one process of
//     a host holds a port), and those of the same shard on the same host
//     whose endpoint refuses connections. They were left by an executor
//     killed (or a task ended) before its session expired; Aurora leaves
//     them until the session expires.
//   - After a session expiry the ZooKeeper client reconnects at once instead
//     of sleeping a second first (go-zookeeper's default), so re-registration
//     takes milliseconds once the ensemble is reachable.
package announcer
