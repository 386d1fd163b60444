//! Feature `metrics`: a reactor's counters and close-detection latency
//! published through the [`metrics`](https://docs.rs/metrics) facade,
//! periodically, from a reactor timer: never a facade call per event (the
//! facade's common recorders keep every sample until scraped).

use std::time::Duration;

use crate::counters::{CloseKind, Counters, Side};
use crate::ctx::TimerId;
use crate::handler::Handler;
use crate::latency::Latency;
use crate::reactor::Reactor;

/// Publishes `reactor`'s [`Counters`] and, if measured, its
/// [`Latency`] every `period` through the `metrics` facade, under names
/// starting with `prefix` (say `"hangup"`), with a `worker` label (give
/// each worker of a group its own):
///
/// - counters `{prefix}_accepted_total`, `_connects_started_total`,
///   `_connected_total`, `_connect_failed_total`, `_rejected_total`
///   (label `cause`), `_closed_total` (labels `reason`, and `_closed_by_side_total`
///   with `side`), `_closed_unsent_total`, `_bytes_in_total`,
///   `_bytes_out_total`;
/// - gauge `{prefix}_open`;
/// - gauges `{prefix}_close_latency_seconds` (labels `reason`, `quantile`
///   0.5, 0.99 and `max`), with [`Config::close_latency`](crate::Config::close_latency).
///
/// Returns the reactor timer's id ([`Reactor::cancel_timer`] stops it).
pub fn export_metrics<H: Handler>(
    reactor: &mut Reactor<H>,
    period: Duration,
    prefix: &'static str,
    worker: usize,
) -> TimerId {
    reactor.set_periodic(period, move |ctx| {
        publish(prefix, worker, &ctx.counters(), ctx.latency().as_ref());
    })
}

/// One publication (also what the timer does each period).
pub fn publish(prefix: &str, worker: usize, c: &Counters, latency: Option<&Latency>) {
    let w = worker.to_string();
    let counter = |name: &str, v: u64, labels: Vec<(&'static str, String)>| {
        let mut all = vec![("worker", w.clone())];
        all.extend(labels);
        let labels: Vec<metrics::Label> = all
            .into_iter()
            .map(|(k, v)| metrics::Label::new(k, v))
            .collect();
        metrics::counter!(format!("{prefix}_{name}"), labels).absolute(v);
    };
    counter("accepted_total", c.accepted, vec![]);
    counter("connects_started_total", c.connects_started, vec![]);
    counter("connected_total", c.connected, vec![]);
    counter("connect_failed_total", c.connect_failed, vec![]);
    for (cause, v) in [
        ("limit", c.rejected_limit),
        ("descriptors", c.rejected_descriptors),
        ("factory", c.rejected_factory),
        ("other", c.rejected_other),
    ] {
        counter("rejected_total", v, vec![("cause", cause.to_string())]);
    }
    for k in CloseKind::ALL {
        counter(
            "closed_total",
            c.closed_by(k),
            vec![("reason", format!("{k:?}"))],
        );
    }
    for s in Side::ALL {
        counter(
            "closed_by_side_total",
            c.closed_by_side(s),
            vec![("side", format!("{s:?}"))],
        );
    }
    counter("closed_unsent_total", c.closed_unsent, vec![]);
    counter("bytes_in_total", c.bytes_in, vec![]);
    counter("bytes_out_total", c.bytes_out, vec![]);
    metrics::gauge!(format!("{prefix}_open"), "worker" => w.clone()).set(c.open as f64);
    if let Some(l) = latency {
        for k in CloseKind::ALL {
            let reason = format!("{k:?}");
            for (q, v) in [
                ("0.5", l.percentile(k, 0.5)),
                ("0.99", l.percentile(k, 0.99)),
                ("max", l.max(k)),
            ] {
                if let Some(v) = v {
                    metrics::gauge!(
                        format!("{prefix}_close_latency_seconds"),
                        "worker" => w.clone(),
                        "reason" => reason.clone(),
                        "quantile" => q
                    )
                    .set(v.as_secs_f64());
                }
            }
        }
    }
}
