//! Feature `metrics`: what `export_metrics` publishes through the facade,
//! seen by a small recorder of the test's own.
#![cfg(feature = "metrics")]

mod util;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hangup::{CloseReason, Config, Conn, Handler, Reactor};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

type Seen = Arc<Mutex<BTreeMap<String, f64>>>;

struct Cell(String, Seen);
impl CounterFn for Cell {
    fn increment(&self, v: u64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v as f64;
    }
    fn absolute(&self, v: u64) {
        self.1.lock().unwrap().insert(self.0.clone(), v as f64);
    }
}
impl GaugeFn for Cell {
    fn increment(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() += v;
    }
    fn decrement(&self, v: f64) {
        *self.1.lock().unwrap().entry(self.0.clone()).or_default() -= v;
    }
    fn set(&self, v: f64) {
        self.1.lock().unwrap().insert(self.0.clone(), v);
    }
}
impl HistogramFn for Cell {
    fn record(&self, _: f64) {}
}

/// Keeps the last value of each series, named `name{label=value,...}`.
struct Keep(Seen);
impl Keep {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        Arc::new(Cell(
            format!("{}{{{}}}", key.name(), labels.join(",")),
            self.0.clone(),
        ))
    }
}
impl Recorder for Keep {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

struct Nop;
impl Handler for Nop {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn export_metrics_publishes_counters_and_latency_periodically() {
    util::init();
    let seen = Seen::default();
    let recorder = Keep(seen.clone());
    let mut r = Reactor::with_config(Config::default().close_latency(true)).unwrap();
    let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Nop).unwrap();
    hangup::export_metrics(&mut r, Duration::from_millis(20), "hangup", 0);
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..3 {
            drop(std::net::TcpStream::connect(addr).unwrap());
        }
        let end = std::time::Instant::now() + util::WAIT;
        loop {
            r.run_once(Some(Duration::from_millis(5))).unwrap();
            let s = seen.lock().unwrap();
            if s.get("hangup_closed_total{worker=0,reason=PeerClosed}") == Some(&3.0) {
                break;
            }
            assert!(std::time::Instant::now() < end, "not published: {s:#?}");
        }
    });
    let s = seen.lock().unwrap();
    println!(
        "{} series, e.g. accepted {:?}",
        s.len(),
        s.get("hangup_accepted_total{worker=0}")
    );
    assert_eq!(s.get("hangup_accepted_total{worker=0}"), Some(&3.0));
    assert_eq!(
        s.get("hangup_closed_by_side_total{worker=0,side=Peer}"),
        Some(&3.0)
    );
    assert_eq!(s.get("hangup_open{worker=0}"), Some(&0.0));
    assert!(
        s.contains_key("hangup_close_latency_seconds{worker=0,reason=PeerClosed,quantile=max}"),
        "{s:#?}"
    );
}
