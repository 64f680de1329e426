//! Counters kept at the HTTP edge and the Prometheus text rendering of all metrics.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use chorus_sdk::wire::Stats;

use super::limits::ConnectionCapacity;
use crate::bus::BusFigures;
use crate::store::StoreFigures;

/// Counters incremented by the HTTP and WebSocket edge.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// WebSocket upgrades refused because the server is full.
    pub rejected_total_limit: AtomicU64,
    /// WebSocket upgrades refused because the client address has too many connections.
    pub rejected_per_ip_limit: AtomicU64,
    /// WebSocket connections refused because their user has too many.
    pub rejected_per_user_limit: AtomicU64,
    /// WebSocket upgrades refused because of their `Origin`.
    pub rejected_origin: AtomicU64,
    /// Client frames received over WebSocket.
    pub frames_received: AtomicU64,
    /// Client frames refused at the edge (malformed, unknown, too large).
    pub frames_refused: AtomicU64,
    /// Long polls answered.
    pub polls: AtomicU64,
    /// Failed accepts other than a connection reset before it was taken (out of files, ...).
    pub accept_errors: AtomicU64,
}

impl EdgeCounters {
    /// Adds one to a counter.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// Renders every metric in the Prometheus text exposition format (version 0.0.4).
pub fn render(stats: &Stats, edge: &EdgeCounters, capacity: &ConnectionCapacity) -> String {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
    let mut out = String::with_capacity(2048);
    metric(
        &mut out,
        "chorus_connections",
        "gauge",
        "Open WebSocket connections.",
        &[("", stats.connections as f64)],
    );
    metric(
        &mut out,
        "chorus_connections_peak",
        "gauge",
        "Most WebSocket connections open at once since start.",
        &[("", stats.peak_connections as f64)],
    );
    metric(
        &mut out,
        "chorus_connections_max",
        "gauge",
        "WebSocket connections allowed at once: --max-connections, or the open-file limit less --reserved-files if lower.",
        &[("", capacity.effective as f64)],
    );
    if let Some(open_files) = capacity.open_files {
        metric(
            &mut out,
            "chorus_open_files_limit",
            "gauge",
            "The process's soft open-file limit (RLIMIT_NOFILE), raised to the hard limit at start.",
            &[("", open_files as f64)],
        );
    }
    metric(
        &mut out,
        "chorus_polling_sessions",
        "gauge",
        "Live polling sessions.",
        &[("", stats.polling_sessions as f64)],
    );
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        metric(
            &mut out,
            "chorus_tasks",
            "gauge",
            "Tasks alive on the server's runtime: one per WebSocket connection and per HTTP request in progress, and a few of the server's own.",
            &[("", runtime.metrics().num_alive_tasks() as f64)],
        );
    }
    metric(
        &mut out,
        "chorus_rooms",
        "gauge",
        "Rooms with members on this node.",
        &[("", stats.rooms as f64)],
    );
    metric(
        &mut out,
        "chorus_users",
        "gauge",
        "Distinct users connected.",
        &[("", stats.users as f64)],
    );
    metric(
        &mut out,
        "chorus_events_stored_total",
        "counter",
        "Durable events stored since start.",
        &[("", stats.events_total as f64)],
    );
    metric(
        &mut out,
        "chorus_frames_received_total",
        "counter",
        "Client frames received over WebSocket.",
        &[("", get(&edge.frames_received))],
    );
    metric(
        &mut out,
        "chorus_frames_refused_total",
        "counter",
        "Client frames refused at the edge.",
        &[("", get(&edge.frames_refused))],
    );
    metric(
        &mut out,
        "chorus_polls_total",
        "counter",
        "Long polls answered.",
        &[("", get(&edge.polls))],
    );
    metric(
        &mut out,
        "chorus_connections_rejected_total",
        "counter",
        "WebSocket connections refused, by reason (per_user_limit once the token is known, the others at the upgrade).",
        &[
            ("{reason=\"total_limit\"}", get(&edge.rejected_total_limit)),
            (
                "{reason=\"per_ip_limit\"}",
                get(&edge.rejected_per_ip_limit),
            ),
            (
                "{reason=\"per_user_limit\"}",
                get(&edge.rejected_per_user_limit),
            ),
            ("{reason=\"origin\"}", get(&edge.rejected_origin)),
        ],
    );
    metric(
        &mut out,
        "chorus_accept_errors_total",
        "counter",
        "Failed accepts of new TCP connections (e.g. out of open files); each is retried shortly.",
        &[("", get(&edge.accept_errors))],
    );
    out
}

/// Appends the multi-node engine's metrics: the store's append round trips and the bus's
/// figures (neither exists on one node: nothing is rendered then).
pub fn render_engine(out: &mut String, store: Option<&StoreFigures>, bus: Option<&BusFigures>) {
    if let Some(store) = store {
        metric(
            out,
            "chorus_redis_append_round_trip_seconds",
            "summary",
            "Round trips of append pipelines (EVALSHA of the append script) to Redis.",
            &[
                ("_sum", store.append_round_trip_micros as f64 / 1e6),
                ("_count", store.append_round_trips as f64),
            ],
        );
        metric(
            out,
            "chorus_redis_append_round_trip_seconds_max",
            "gauge",
            "The longest append round trip since start.",
            &[("", store.append_round_trip_micros_max as f64 / 1e6)],
        );
    }
    let Some(bus) = bus else {
        return;
    };
    metric(
        out,
        "chorus_bus_followed_rooms",
        "gauge",
        "Rooms this node follows on the bus (open here).",
        &[("", bus.followed_rooms as f64)],
    );
    metric(
        out,
        "chorus_bus_reconnects_total",
        "counter",
        "Times the bus's subscriber connection was lost and established again.",
        &[("", bus.reconnects as f64)],
    );
    metric(
        out,
        "chorus_bus_lag_seconds",
        "summary",
        "Pub/sub lag of the stored events heard: time heard minus the event's at.",
        &[
            ("_sum", bus.lag_ms_sum as f64 / 1e3),
            ("_count", bus.events_heard as f64),
        ],
    );
    metric(
        out,
        "chorus_bus_lag_seconds_max",
        "gauge",
        "The largest pub/sub lag since start.",
        &[("", bus.lag_ms_max as f64 / 1e3)],
    );
    metric(
        out,
        "chorus_bus_signals_total",
        "counter",
        "Signals sent to and heard from other nodes.",
        &[
            ("{direction=\"sent\"}", bus.signals_sent as f64),
            ("{direction=\"heard\"}", bus.signals_heard as f64),
        ],
    );
}
