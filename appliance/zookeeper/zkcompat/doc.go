// Package zkcompat is the independent conformance, compatibility and
// benchmark suite for aurorabox's embedded ZooKeeper server
// (github.com/aurorabox/aurorabox/appliance/zookeeper).
//
// The suite lives entirely in this package's tests. Every check runs against
// two targets side by side: "real", the Apache ZooKeeper standalone server
// from the Debian package (java org.apache.zookeeper.server.ZooKeeperServerMain),
// and "ours", the embedded Go server. Real Apache ZooKeeper is the oracle: a
// check that passes for "real" and fails for "ours" is a bug in our server,
// unless the difference is listed by name in the knownDifferences table.
//
// What is covered:
//
//   - TestConformance: the ZooKeeper client API through github.com/go-zookeeper/zk
//     and a small raw jute client (Create2, invalid paths, oversized packets),
//     including Stat semantics, sequential numbering, multi atomicity, ACLs,
//     one-shot watches, setWatches after reconnect, session expiry and the
//     four-letter words ruok, srvr, stat, mntr and conf.
//   - TestZkCli: Apache ZooKeeper's own zkCli.sh, driven non-interactively.
//   - TestJavaClient: a small Java program (testdata/ZkCompatClient.java),
//     compiled at test time against the Debian jars.
//   - TestStartupFootprint and BenchmarkStartup: time from process start to
//     "imok" and idle RSS of both servers.
//   - BenchmarkZK: get, set and create throughput with 1 and 16 clients.
//
// Run it with
//
//	go test ./appliance/zookeeper/zkcompat/
//	go test -run XXX -bench . ./appliance/zookeeper/zkcompat/
//
// When the real server (java plus /usr/share/java/zookeeper.jar) is missing,
// the "real" subtests are skipped, unless AURORABOX_REQUIRE_REALZK=1, in which
// case they fail. AURORABOX_ZKCOMPAT_OURS=subprocess runs "ours" as a separate
// process (the test binary re-executes itself as the server) instead of
// in-process.
package zkcompat
