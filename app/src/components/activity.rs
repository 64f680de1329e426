//! The activity panel (the newest messages of the room, everyone's or only the signed-in
//! user's, through [`use_activity_feed`]) and the banner that shows the latest notice from the
//! application's backend (from [`crate::chorus::Chorus::backend_notice`]).

use chorus_sdk::wire::RoomName;
use leptos::prelude::*;

use crate::chorus::use_chorus;
use crate::hooks::{ActivityRow, use_activity_feed};
use crate::model;

/// The latest backend notice (maintenance, a note for this user or this tab), until dismissed.
#[component]
pub fn NoticeBanner() -> impl IntoView {
    let chorus = use_chorus();
    let notice = chorus.backend_notice();
    move || {
        notice.get().map(|notice| {
            let level = notice.level.clone();
            view! {
                <div class=format!("backend-notice {level}") role="alert" data-id=notice.id.clone()>
                    <span class="level">{level.clone()}</span>
                    <span class="text">{model::notice_text(&notice)}</span>
                    <button class="link" on:click=move |_| chorus.dismiss_backend_notice()>
                        "Dismiss"
                    </button>
                </div>
            }
        })
    }
}

/// The newest messages of `room`, everyone's or (checked) only the signed-in user's.
#[component]
pub fn ActivityPanel(
    /// The room.
    #[prop(into)]
    room: Signal<RoomName>,
    /// The newest seq the live feed has seen stored: the panel follows it.
    #[prop(into)]
    newest: Signal<u64>,
) -> impl IntoView {
    let only_mine = RwSignal::new(false);
    let (rows, error) = use_activity_feed(room, only_mine.into(), newest);
    view! {
        <aside class="activity" aria-label="Activity">
            <h3>"Activity"</h3>
            <label>
                <input
                    type="checkbox"
                    prop:checked=move || only_mine.get()
                    on:change=move |ev| only_mine.set(event_target_checked(&ev))
                />
                "Only mine"
            </label>
            <ol class="activity-list">
                <For
                    each=move || rows.get()
                    key=|row| row.seq
                    children=move |row: ActivityRow| {
                        view! {
                            <li data-seq=row.seq>
                                <span class="author">{row.name}</span>
                                <span class="text">{row.text}</span>
                            </li>
                        }
                    }
                />
            </ol>
            <p class="error" role="alert">
                {move || error.get()}
            </p>
        </aside>
    }
}
