//! The edit lock of a room's composer: who holds it ("Ana is editing until 12:01"), and a
//! button to take or release it. While someone else holds it, the room view disables the
//! composer (see [`crate::components::shell`]); the server refuses a stale holder's messages
//! anyway (fenced publishes).

use chorus_sdk::wire::{LockInfo, PresenceUser};
use leptos::prelude::*;

use crate::hooks::{EDIT_LOCK, RoomHandle};
use crate::model;

/// The grant of the edit lock held by another tab than this one, if any.
pub fn held_by_other(locks: &[LockInfo], own: Option<&LockInfo>) -> Option<LockInfo> {
    locks
        .iter()
        .find(|l| l.name.as_str() == EDIT_LOCK && own.is_none_or(|o| o.token != l.token))
        .cloned()
}

/// "12:01": a grant's `until` (ms since the Unix epoch) in local time.
fn clock_time(unix_ms: u64) -> String {
    let date = js_sys::Date::new_0();
    date.set_time(unix_ms as f64);
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// The lock badge and its button.
#[component]
pub fn LockBar(
    /// The room's handle (its locks and the lock actions).
    room: RoomHandle,
    /// Who is here (for display names).
    #[prop(into)]
    presence: Signal<Vec<PresenceUser>>,
) -> impl IntoView {
    let locks = room.locks();
    let own = room.own_lock();
    let other = Memo::new(move |_| held_by_other(&locks.read(), own.read().as_ref()));
    let badge = move || {
        if let Some(grant) = other.get() {
            let name = model::display_name(&presence.read(), &grant.user);
            Some(format!(
                "{name} is editing until {}",
                clock_time(grant.until)
            ))
        } else {
            own.get()
                .map(|grant| format!("You are editing until {}", clock_time(grant.until)))
        }
    };
    view! {
        <div class="lock-bar">
            <span class="lock-badge" role="status" aria-live="polite">
                {badge}
            </span>
            {move || {
                if own.read().is_some() {
                    view! {
                        <button class="lock-button" on:click=move |_| room.release_lock()>
                            "Done editing"
                        </button>
                    }
                        .into_any()
                } else {
                    view! {
                        // Also while someone else holds it: the server says no, with who and
                        // until when (a notice), and the answer never races a stale badge.
                        <button class="lock-button" on:click=move |_| room.take_lock()>
                            "Edit"
                        </button>
                    }
                        .into_any()
                }
            }}
        </div>
    }
}
