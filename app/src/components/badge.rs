//! The connection badge: Live (WebSocket), Syncing (polling or reconnecting, with the retry
//! countdown) or Offline, with the number of publishes still in the outbox.

use std::time::Duration;

use chorus_sdk::client::ConnectionState;
use leptos::prelude::*;

use crate::hooks::{now, use_interval};
use crate::model;

/// The connection badge.
#[component]
pub fn ConnectionBadge(
    /// The connection state from the SDK.
    #[prop(into)]
    state: Signal<ConnectionState>,
    /// Publishes waiting for their ack.
    #[prop(into)]
    queued: Signal<usize>,
) -> impl IntoView {
    // Ticks so the retry countdown moves; nothing else depends on it.
    let tick = RwSignal::new(0u64);
    use_interval(Duration::from_millis(250), move || tick.update(|t| *t += 1));
    let view_model = Memo::new(move |_| {
        let state = state.get();
        // Only a countdown needs the clock; otherwise the ticks reach nothing.
        if matches!(state, ConnectionState::Reconnecting { .. }) {
            tick.track();
        }
        let retry_in_ms = match &state {
            ConnectionState::Reconnecting { next_attempt, .. } => {
                Some(next_attempt.saturating_duration_since(now()).as_millis() as u64)
            }
            _ => None,
        };
        model::badge(&state, queued.get(), retry_in_ms)
    });
    view! {
        <div
            class=move || format!("badge {}", view_model.read().class)
            role="status"
            aria-live="polite"
            data-badge=move || view_model.read().class
        >
            <span class="badge-dot" aria-hidden="true"></span>
            <span class="badge-label">{move || view_model.read().label}</span>
            <span class="badge-detail">{move || view_model.read().detail.clone()}</span>
        </div>
    }
}
