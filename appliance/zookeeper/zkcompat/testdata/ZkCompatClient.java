// ZkCompatClient exercises a ZooKeeper server with Apache ZooKeeper's own
// Java client. It is compiled and run by TestJavaClient (java_test.go) and
// prints one "KEY value" line per check; the Go test asserts them.
//
// Usage: java -cp <zookeeper jars>:<dir> ZkCompatClient host:port /basepath

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class ZkCompatClient {
    static ZooKeeper connect(String servers) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(servers, 10000, event -> {
            if (event.getState() == Watcher.Event.KeeperState.SyncConnected) {
                connected.countDown();
            }
        });
        if (!connected.await(20, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no SyncConnected within 20s");
        }
        return zk;
    }

    static void out(String key, Object value) {
        System.out.println(key + " " + value);
        System.out.flush();
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    public static void main(String[] args) throws Exception {
        String servers = args[0];
        String base = args[1];
        try {
            run(servers, base);
            out("RESULT", "OK");
        } catch (Throwable e) {
            out("RESULT", "ERROR " + e);
            e.printStackTrace(System.out);
            System.exit(1);
        }
        System.exit(0);
    }

    static void run(String servers, String base) throws Exception {
        ZooKeeper a = connect(servers);
        ZooKeeper b = connect(servers);
        out("SESSIONS_DISTINCT", a.getSessionId() != b.getSessionId());
        out("NEGOTIATED_TIMEOUT", a.getSessionTimeout());

        String created = a.create(base, b("v1"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        out("CREATED", created);

        // create2-style create returning a Stat.
        Stat cst = new Stat();
        a.create(base + "/withstat", b("xyz"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, cst);
        out("CREATE2_STAT", cst.getVersion() + "," + cst.getDataLength() + "," + (cst.getCzxid() == cst.getMzxid()));

        // Ephemeral node, visible from the other session with the right owner.
        String eph = a.create(base + "/eph", b("e"), ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        Stat est = b.exists(eph, false);
        out("EPH_VISIBLE", est != null);
        out("EPH_OWNER_MATCHES", est != null && est.getEphemeralOwner() == a.getSessionId());

        String seq = b.create(base + "/seq-", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL);
        out("SEQ", seq.substring(base.length() + 1));

        // Data watch set by b, fired by a's setData.
        LinkedBlockingQueue<WatchedEvent> dataEvents = new LinkedBlockingQueue<>();
        byte[] d = b.getData(base, dataEvents::add, null);
        out("GET", new String(d, StandardCharsets.UTF_8));
        Stat sst = a.setData(base, b("v2"), 0);
        out("SET_VERSION", sst.getVersion());
        WatchedEvent ev = dataEvents.poll(15, TimeUnit.SECONDS);
        out("DATA_WATCH", ev == null ? "none" : ev.getType() + " " + ev.getPath());

        // Child watch.
        LinkedBlockingQueue<WatchedEvent> childEvents = new LinkedBlockingQueue<>();
        List<String> kids = new ArrayList<>(b.getChildren(base, childEvents::add));
        Collections.sort(kids);
        out("CHILDREN", String.join(",", kids));
        a.create(base + "/kid", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        ev = childEvents.poll(15, TimeUnit.SECONDS);
        out("CHILD_WATCH", ev == null ? "none" : ev.getType() + " " + ev.getPath());

        // Version conflicts and missing nodes raise the right exceptions.
        try {
            a.setData(base, b("v3"), 0);
            out("BADVERSION", "no error");
        } catch (KeeperException e) {
            out("BADVERSION", e.code());
        }
        try {
            a.getData(base + "/missing", false, null);
            out("NONODE", "no error");
        } catch (KeeperException e) {
            out("NONODE", e.code());
        }

        // multi: a failing op aborts the whole transaction.
        try {
            a.multi(Arrays.asList(
                    Op.create(base + "/m1", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                    Op.check(base, 99)));
            out("MULTI_ABORT", "no error");
        } catch (KeeperException e) {
            out("MULTI_ABORT", e.code() + " m1exists=" + (a.exists(base + "/m1", false) != null));
        }
        List<OpResult> res = a.multi(Arrays.asList(
                Op.create(base + "/m2", null, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.setData(base + "/m2", b("m"), 0),
                Op.delete(base + "/kid", -1)));
        out("MULTI_OK", res.size());

        // Exists watch on the ephemeral, then a closes: the node must vanish
        // for b and the watch must fire NodeDeleted.
        LinkedBlockingQueue<WatchedEvent> existsEvents = new LinkedBlockingQueue<>();
        b.exists(eph, existsEvents::add);
        a.close();
        ev = existsEvents.poll(15, TimeUnit.SECONDS);
        out("EPH_WATCH", ev == null ? "none" : ev.getType() + " " + ev.getPath());
        out("EPH_GONE", b.exists(eph, false) == null);

        // Clean up with b.
        for (String k : b.getChildren(base, false)) {
            b.delete(base + "/" + k, -1);
        }
        b.delete(base, -1);
        out("CLEANED", b.exists(base, false) == null);
        b.close();
    }
}
