import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Ends the worker when it makes no progress for stuck_ms: the Java client retries a broker
 * that does not answer as it expects for ever (it reconnects after a closed connection and
 * re-requests metadata), so a run that cannot work would otherwise only end when the parent
 * kills it, with no reason given. It prints what the worker was doing and how far it got as
 * the worker's ERROR line, and halts the JVM (the client's threads cannot keep it).
 */
final class Watchdog {
    private final AtomicLong records = new AtomicLong();
    private final AtomicLong phases = new AtomicLong();
    private volatile String phase = "starting";

    /** Reads stuck_ms (0 or absent: no watchdog). */
    static Watchdog start(Map<String, String> kv) {
        Watchdog w = new Watchdog();
        long stuckMs = Long.parseLong(kv.getOrDefault("stuck_ms", "0"));
        if (stuckMs <= 0) {
            return w;
        }
        Thread t = new Thread(() -> {
            long lastRecords = -1;
            long lastPhases = -1;
            long since = System.nanoTime();
            while (true) {
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    return;
                }
                long r = w.records.get();
                long p = w.phases.get();
                if (r != lastRecords || p != lastPhases) {
                    lastRecords = r;
                    lastPhases = p;
                    since = System.nanoTime();
                } else if (System.nanoTime() - since >= stuckMs * 1_000_000L) {
                    fail("no progress for " + stuckMs / 1000.0 + "s while " + w.phase + " (" + r
                            + " records done)");
                }
            }
        }, "bench-watchdog");
        t.setDaemon(true);
        t.start();
        return w;
    }

    /** Names what the worker does now; entering a phase counts as progress. */
    void enter(String what) {
        phase = what;
        phases.incrementAndGet();
    }

    /** Counts one record done. */
    void tick() {
        records.incrementAndGet();
    }

    /** Reports the error as the worker's ERROR line (the parent shows it) and on stderr, and halts. */
    static void fail(String error) {
        System.out.println("ERROR java: " + error);
        System.out.flush();
        System.err.println("java-bench: error: " + error);
        System.err.flush();
        Runtime.getRuntime().halt(1);
    }
}
