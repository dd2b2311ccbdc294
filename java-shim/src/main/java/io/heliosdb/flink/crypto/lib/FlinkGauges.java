package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.PythonBridge;
import io.heliosdb.flink.crypto.PythonErrors;
import io.heliosdb.flink.crypto.PythonLaunch;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.groups.TaskMetricGroup;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The process's crypto figures as Flink gauges, named exactly like the Prometheus metrics
 * (docs/metrics.md). Values are process-wide totals (summed over labels; durations as a summary's
 * {@code _sum} seconds and {@code _count}), read from Python with ONE call ({@code flink_metrics}) that
 * refreshes every gauge, at most once per {@link #REFRESH_MILLIS}, from the reporter's thread.
 *
 * <p>A metrics failure never fails a task: registration and refresh catch everything; a gauge that
 * cannot refresh keeps its last value and the failure is logged once. The reporter waits at most
 * {@link #WAIT_MILLIS} for Python (the first refresh starts it); a slower answer is applied at the
 * next read.
 */
final class FlinkGauges {

    /** The gauge names, in lib_ops.FLINK_GAUGES order (tests/test_flink_lib_hooks.py checks both lists). */
    static final String[] NAMES = {
        "heliosdb_checkpoint_encryption_total",
        "heliosdb_checkpoint_decryption_total",
        "heliosdb_checkpoint_encryption_duration_seconds_sum",
        "heliosdb_checkpoint_encryption_duration_seconds_count",
        "heliosdb_checkpoint_decryption_duration_seconds_sum",
        "heliosdb_checkpoint_decryption_duration_seconds_count",
        "heliosdb_kms_call_duration_seconds_sum",
        "heliosdb_kms_call_duration_seconds_count",
        "heliosdb_key_rotation_total",
        "heliosdb_encryption_errors_total",
        "heliosdb_decryption_errors_total",
        "heliosdb_auth_failures_total",
        "heliosdb_checkpoint_encrypted_bytes_total",
        "heliosdb_checkpoint_decrypted_bytes_total",
        "heliosdb_dek_cache_hits_total",
        "heliosdb_dek_cache_misses_total",
        "heliosdb_kms_calls_total",
    };

    static final long REFRESH_MILLIS = 1000;
    static final long WAIT_MILLIS = 200;
    /** How long the first registration in a process waits for the read that switches metrics on. */
    static final long SWITCH_ON_MILLIS = 10_000;

    private static final Logger LOG = LoggerFactory.getLogger(FlinkGauges.class);
    private static final Pattern ENTRY = Pattern.compile("\"([A-Za-z0-9_]+)\"\\s*:\\s*([-+0-9.eE]+|NaN|-?Infinity)");
    private static final Object LOCK = new Object();
    private static FlinkGauges instance;
    /** Groups that already carry the gauges (the TaskManager's once per process; each operator's once). */
    private static final Set<MetricGroup> REGISTERED = Collections.newSetFromMap(new WeakHashMap<>());

    interface Source {
        Future<Object> fetch();
    }

    private final Source source;
    /** Monotonic nanoseconds: System::nanoTime, or a test's clock. */
    private final LongSupplier nanos;
    private volatile double[] values = new double[NAMES.length];
    private Future<Object> inFlight;
    private long lastRefresh;
    private boolean refreshed;
    private boolean warned;

    FlinkGauges(Source source) {
        this(source, System::nanoTime);
    }

    FlinkGauges(Source source, LongSupplier nanos) {
        this.source = source;
        this.nanos = nanos;
    }

    /** The process's gauges, refreshed from Python with {@code conf} (the first caller's). */
    static FlinkGauges get(Map<String, String> conf) {
        synchronized (LOCK) {
            if (instance == null) {
                String json = PythonLaunch.toJson(conf);
                instance = new FlinkGauges(() -> PythonBridge.shared(conf).submit("flink_metrics", json));
            }
            return instance;
        }
    }

    /**
     * Registers the gauges on the TaskManager metric group above {@code task} (once per process) and on
     * {@code operatorGroup} (once per group), after {@link #switchOn}. Never throws.
     */
    static void register(Map<String, String> conf, TaskMetricGroup task, MetricGroup operatorGroup) {
        try {
            FlinkGauges g = get(conf);
            g.switchOn(SWITCH_ON_MILLIS);
            MetricGroup tm = taskManagerGroup(task);
            g.addOnce(tm);
            if (operatorGroup != null && operatorGroup != tm) {
                g.addOnce(operatorGroup);
            }
        } catch (Throwable t) {
            LOG.warn("heliosdb crypto: could not register the Flink metrics (the job is not affected): {}", t.toString());
        }
    }

    /**
     * The process's first read, waited for (at most {@code waitMillis}: {@link #SWITCH_ON_MILLIS} before the first
     * keyed backend restores or checkpoints anything; 0 on the JobManager, which does not wait): Python keeps its
     * metrics only once something asks for them (prometheus-client is an optional extra), so this read switches them
     * on and they count every file from then on. Later calls return at once; the answer is applied at the next read.
     */
    void switchOn(long waitMillis) {
        Future<Object> first;
        synchronized (this) {
            if (refreshed) {
                return;
            }
            lastRefresh = nanos.getAsLong();
            refreshed = true;
            try {
                inFlight = source.fetch();
            } catch (Throwable t) {
                failed(t);
                return;
            }
            first = inFlight;
        }
        try {
            first.get(waitMillis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Exception e) {
            // slow or failed: reported (once) when the answer is applied at the next read
        }
    }

    /** The TaskManager's metric group: task -> TaskManager job -> TaskManager (the task group if the chain differs). */
    static MetricGroup taskManagerGroup(TaskMetricGroup task) {
        if (task == null) {
            return null;
        }
        try {
            return task.parent().parent();
        } catch (RuntimeException | LinkageError e) {
            return task;
        }
    }

    boolean addOnce(MetricGroup group) {
        if (group == null) {
            return false;
        }
        synchronized (REGISTERED) {
            if (!REGISTERED.add(group)) {
                return false;
            }
        }
        for (int i = 0; i < NAMES.length; i++) {
            final int index = i;
            group.gauge(NAMES[i], (Gauge<Double>) () -> value(index));
        }
        return true;
    }

    /** The latest value of gauge {@code index}; starts a refresh when the cached one is stale. */
    double value(int index) {
        Future<Object> waitFor = null;
        synchronized (this) {
            if (inFlight != null && inFlight.isDone()) {
                apply();
            }
            long now = nanos.getAsLong();
            if (inFlight == null && (!refreshed || now - lastRefresh >= TimeUnit.MILLISECONDS.toNanos(REFRESH_MILLIS))) {
                lastRefresh = now;
                refreshed = true;
                try {
                    inFlight = source.fetch();
                    waitFor = inFlight;
                } catch (Throwable t) {
                    failed(t);
                }
            }
        }
        if (waitFor != null) {
            try {
                waitFor.get(WAIT_MILLIS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } catch (Exception e) {
                // a slow or failed refresh: the values stay; apply() reports a failure once
            }
            synchronized (this) {
                if (inFlight == waitFor && waitFor.isDone()) {
                    apply();
                }
            }
        }
        return values[index];
    }

    /** Takes the finished refresh's answer (lock held). */
    private void apply() {
        Future<Object> f = inFlight;
        inFlight = null;
        try {
            values = parse(String.valueOf(f.get()), values);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            failed(t instanceof java.util.concurrent.ExecutionException && t.getCause() != null ? t.getCause() : t);
        }
    }

    private void failed(Throwable t) {
        if (!warned) {
            warned = true;
            LOG.warn("heliosdb crypto: the Flink metrics could not be refreshed and keep their last values "
                    + "(logged once): {}", PythonErrors.translate(t).getMessage());
        } else {
            LOG.debug("heliosdb crypto: metrics refresh failed", t);
        }
    }

    /** {@code {"name": number, ...}} -> values in {@link #NAMES} order; names missing keep {@code previous}. */
    static double[] parse(String json, double[] previous) {
        double[] out = previous.clone();
        Matcher m = ENTRY.matcher(json);
        int found = 0;
        while (m.find()) {
            for (int i = 0; i < NAMES.length; i++) {
                if (NAMES[i].equals(m.group(1))) {
                    out[i] = Double.parseDouble(m.group(2));
                    found++;
                }
            }
        }
        if (found == 0 && !json.trim().equals("{}")) {
            throw new IllegalArgumentException("not a metrics map: " + json.substring(0, Math.min(80, json.length())));
        }
        return out;
    }
}
