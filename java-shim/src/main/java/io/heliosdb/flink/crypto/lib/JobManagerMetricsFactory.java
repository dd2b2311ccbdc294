package io.heliosdb.flink.crypto.lib;

import io.heliosdb.flink.crypto.CryptoOptions;
import io.heliosdb.flink.crypto.FlinkLine;

import org.apache.flink.configuration.GlobalConfiguration;
import org.apache.flink.metrics.Metric;
import org.apache.flink.metrics.MetricConfig;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.runtime.metrics.groups.FrontMetricGroup;
import org.apache.flink.runtime.metrics.groups.JobManagerMetricGroup;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.Map;
import java.util.Properties;
import java.util.function.Supplier;

/**
 * {@code metrics.reporter.heliosdb.factory.class: io.heliosdb.flink.crypto.lib.JobManagerMetricsFactory}:
 * the crypto gauges ({@link FlinkGauges}) on the <b>JobManager's</b> metric group. The JobManager writes
 * {@code _metadata}, which holds a small-state job's whole state inline, but no state backend or
 * checkpoint storage hook there gets a metric group. A metric reporter does: Flink hands every
 * reporter each metric as it is added, with its group. This reporter reports nothing; when the first
 * metric of the JobManager's own group ({@link JobManagerMetricGroup}) arrives, it adds the gauges to
 * that group, so they show in the REST API ({@code /jobmanager/metrics}) and in every reporter
 * ({@code flink_jobmanager_heliosdb_...} from Flink's Prometheus reporter), and it starts the read
 * that switches Python's metrics on, without waiting (the JobManager's start is not held up). On a
 * TaskManager it does nothing (the metered state backend registers the gauges there).
 *
 * <p>A reporter sees only its own {@code metrics.reporter.<name>.*} options, so the
 * {@code heliosdb.crypto.*} entries (the Python executable above all) come from the cluster's
 * configuration file ({@code FLINK_CONF_DIR}). Never throws: metrics must not stop a JobManager.
 */
public class JobManagerMetricsFactory implements MetricReporterFactory {

    private static final Logger LOG = LoggerFactory.getLogger(JobManagerMetricsFactory.class);

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        FlinkLine.check("the lib jar's JobManager metrics");
        return new Reporter(() -> CryptoOptions.fromFlink(GlobalConfiguration.loadConfiguration()));
    }

    /** The reporter: adds the gauges to the process's JobManager group, once. */
    static final class Reporter implements MetricReporter {
        private final Supplier<Map<String, String>> conf;
        private MetricGroup done;

        Reporter(Supplier<Map<String, String>> conf) {
            this.conf = conf;
        }

        @Override
        public void open(MetricConfig config) {
        }

        @Override
        public void close() {
        }

        @Override
        public void notifyOfAddedMetric(Metric metric, String metricName, MetricGroup group) {
            if (metricName.startsWith("heliosdb_")) {
                return; // ours, added below (Flink notifies reporters of it while we add it)
            }
            MetricGroup real = group instanceof FrontMetricGroup ? ((FrontMetricGroup<?>) group).getWrappedMetricGroup() : group;
            if (!(real instanceof JobManagerMetricGroup) || real == done) {
                return;
            }
            done = real;
            try {
                FlinkGauges g = FlinkGauges.get(conf.get());
                if (g.addOnce(real)) {
                    g.switchOn(0);
                    LOG.info("heliosdb crypto: the crypto metrics are registered on the JobManager's metric group");
                }
            } catch (Throwable t) {
                LOG.warn("heliosdb crypto: could not register the JobManager's crypto metrics (the cluster is not affected): {}",
                        t.toString());
            }
        }

        @Override
        public void notifyOfRemovedMetric(Metric metric, String metricName, MetricGroup group) {
        }
    }
}
