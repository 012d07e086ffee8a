//! Request metrics in the Prometheus text format: counts by service and status,
//! and a latency histogram by service.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The gateway's request metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    durations: BTreeMap<&'static str, Histogram>,
}

impl Metrics {
    /// Records one finished request.
    pub fn record(&self, service: &'static str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *inner.requests.entry((service, status)).or_default() += 1;
        let histogram = inner.durations.entry(service).or_default();
        for (idx, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                histogram.counts[idx] += 1;
            }
        }
        histogram.sum += secs;
        histogram.count += 1;
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = String::new();
        out.push_str("# HELP toolforge_http_requests_total API requests by service and status.\n");
        out.push_str("# TYPE toolforge_http_requests_total counter\n");
        for ((service, status), count) in &inner.requests {
            let _ = writeln!(
                out,
                "toolforge_http_requests_total{{service=\"{service}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP toolforge_http_request_duration_seconds API request latency by service.\n",
        );
        out.push_str("# TYPE toolforge_http_request_duration_seconds histogram\n");
        for (service, histogram) in &inner.durations {
            for (idx, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "toolforge_http_request_duration_seconds_bucket{{service=\"{service}\",le=\"{bound}\"}} {}",
                    histogram.counts[idx]
                );
            }
            let _ = writeln!(
                out,
                "toolforge_http_request_duration_seconds_bucket{{service=\"{service}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "toolforge_http_request_duration_seconds_sum{{service=\"{service}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "toolforge_http_request_duration_seconds_count{{service=\"{service}\"}} {}",
                histogram.count
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_service_and_status_with_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.record("jobs", 200, Duration::from_millis(3));
        metrics.record("jobs", 200, Duration::from_millis(30));
        metrics.record("jobs", 403, Duration::from_millis(1));
        let text = metrics.render();
        assert!(
            text.contains("toolforge_http_requests_total{service=\"jobs\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("toolforge_http_requests_total{service=\"jobs\",status=\"403\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "toolforge_http_request_duration_seconds_bucket{service=\"jobs\",le=\"0.005\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "toolforge_http_request_duration_seconds_bucket{service=\"jobs\",le=\"+Inf\"} 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("toolforge_http_request_duration_seconds_count{service=\"jobs\"} 3\n"),
            "{text}"
        );
    }
}
