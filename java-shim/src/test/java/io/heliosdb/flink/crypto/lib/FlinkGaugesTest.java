package io.heliosdb.flink.crypto.lib;

import org.junit.jupiter.api.Test;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The gauges' cache and failure rules, with a stand-in source and a clock the test moves (no CPython). */
class FlinkGaugesTest {

    static final int ENCRYPTIONS = 0;

    /** A source answering with {@code answers}, counting fetches. */
    static final class Source implements FlinkGauges.Source {
        final AtomicInteger fetches = new AtomicInteger();
        volatile Supplier<Future<Object>> next;

        Source(Supplier<Future<Object>> next) {
            this.next = next;
        }

        @Override
        public Future<Object> fetch() {
            fetches.incrementAndGet();
            return next.get();
        }
    }

    /** A clock the test moves: the refresh rule is checked at exact instants, not by sleeping. */
    static final class Clock implements LongSupplier {
        final AtomicLong nanos = new AtomicLong(1_000_000_000L);

        @Override
        public long getAsLong() {
            return nanos.get();
        }

        void advanceMillis(long ms) {
            nanos.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
        }
    }

    static Future<Object> answer(String json) {
        return CompletableFuture.completedFuture(json);
    }

    @Test
    void oneFetchRefreshesEveryGaugeAtMostOncePerSecond() throws Exception {
        Source s = new Source(() -> answer("{\"heliosdb_checkpoint_encryption_total\": 3.0, \"heliosdb_kms_calls_total\": 2}"));
        Clock clock = new Clock();
        FlinkGauges g = new FlinkGauges(s, clock);
        assertEquals(3.0, g.value(ENCRYPTIONS));
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1));
        assertEquals(0.0, g.value(1));
        s.next = () -> answer("{\"heliosdb_checkpoint_encryption_total\": 5.0}");
        clock.advanceMillis(FlinkGauges.REFRESH_MILLIS - 1);
        assertEquals(3.0, g.value(ENCRYPTIONS), "a millisecond before the second is up: the cached value");
        assertEquals(1, s.fetches.get(), "every gauge read within a second shares one Python call");
        clock.advanceMillis(1);
        assertEquals(5.0, g.value(ENCRYPTIONS));
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1), "a name missing from the answer keeps its value");
        assertEquals(2, s.fetches.get());
    }

    @Test
    void aFailedRefreshKeepsTheLastValuesAndNeverThrows() throws Exception {
        Source s = new Source(() -> answer("{\"heliosdb_checkpoint_encryption_total\": 7.0}"));
        Clock clock = new Clock();
        FlinkGauges g = new FlinkGauges(s, clock);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        CompletableFuture<Object> failed = new CompletableFuture<>();
        failed.completeExceptionally(new RuntimeException("<class 'x.ConfigError'>: heliosdb.crypto.kms.uri: is required"));
        s.next = () -> failed;
        clock.advanceMillis(FlinkGauges.REFRESH_MILLIS);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        s.next = () -> answer("not json");
        clock.advanceMillis(FlinkGauges.REFRESH_MILLIS);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        s.next = () -> {
            throw new IllegalStateException("Python cannot start");
        };
        clock.advanceMillis(FlinkGauges.REFRESH_MILLIS);
        assertEquals(7.0, g.value(ENCRYPTIONS));
        assertEquals(4, s.fetches.get());
    }

    @Test
    void aSlowAnswerDoesNotHoldTheReporterAndIsAppliedAtTheNextRead() {
        CompletableFuture<Object> slow = new CompletableFuture<>();
        Source s = new Source(() -> slow);
        FlinkGauges g = new FlinkGauges(s);
        long t0 = System.nanoTime();
        assertEquals(0.0, g.value(ENCRYPTIONS));
        long waitedMillis = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(waitedMillis >= FlinkGauges.WAIT_MILLIS - 10 && waitedMillis < 2000, "waited " + waitedMillis);
        t0 = System.nanoTime();
        assertEquals(0.0, g.value(1), "other gauges do not wait again for the same call");
        assertTrue((System.nanoTime() - t0) / 1_000_000 < FlinkGauges.WAIT_MILLIS);
        slow.complete("{\"heliosdb_checkpoint_encryption_total\": 9.0}");
        assertEquals(9.0, g.value(ENCRYPTIONS));
        assertEquals(1, s.fetches.get());
    }

    @Test
    void parseReadsPythonJsonAndRefusesGarbage() {
        double[] prev = new double[FlinkGauges.NAMES.length];
        double[] v = FlinkGauges.parse("{\"heliosdb_auth_failures_total\": 1e-05, \"other\": 4}", prev);
        assertEquals(1e-05, v[java.util.Arrays.asList(FlinkGauges.NAMES).indexOf("heliosdb_auth_failures_total")]);
        assertEquals(0.0, prev[0], "the previous array is not modified");
        assertEquals(0.0, FlinkGauges.parse("{}", prev)[0]);
        assertThrows(IllegalArgumentException.class, () -> FlinkGauges.parse("Traceback ...", prev));
    }

    @Test
    void theFirstRegistrationWaitsForOneReadAndLaterOnesDoNot() {
        Source s = new Source(() -> answer("{\"heliosdb_kms_calls_total\": 2}"));
        Clock clock = new Clock();
        FlinkGauges g = new FlinkGauges(s, clock);
        g.switchOn(FlinkGauges.SWITCH_ON_MILLIS);
        assertEquals(1, s.fetches.get(), "the first registration reads once (it switches Python's metrics on)");
        g.switchOn(FlinkGauges.SWITCH_ON_MILLIS);
        assertEquals(2.0, g.value(FlinkGauges.NAMES.length - 1), "that answer is applied at the next read");
        clock.advanceMillis(FlinkGauges.REFRESH_MILLIS - 1);
        g.value(0);
        assertEquals(1, s.fetches.get(), "and within the second no read is repeated");
        clock.advanceMillis(1);
        g.value(0);
        assertEquals(2, s.fetches.get(), "a second after the switch-on read, the next read refreshes");
    }
}
