//! The activity panel (the newest messages of the room, everyone's or only the signed-in
//! user's, filtered by the server: `?type=message&user=…&before=…`) and the banner that shows
//! the latest notice from the application's backend.

use chorus_sdk::wire::RoomName;
use leptos::prelude::*;

use crate::chorus::use_chorus;
use crate::model;
use crate::session;

/// How many events the activity panel lists.
const ACTIVITY_COUNT: u64 = 10;

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

/// The newest messages of `room` from the store, everyone's or only `user`'s; fetched again
/// when the room, the choice or `revision` (the live feed's length) changes.
#[component]
pub fn ActivityPanel(
    /// The room.
    #[prop(into)]
    room: Signal<RoomName>,
    /// The signed-in user (for "Only mine").
    user: String,
    /// Changes whenever the feed changes, so the panel follows it.
    #[prop(into)]
    revision: Signal<usize>,
) -> impl IntoView {
    let chorus = use_chorus();
    let only_mine = RwSignal::new(false);
    let items = RwSignal::new(Vec::<(u64, String, String)>::new());
    let error = RwSignal::new(None::<String>);
    let user = StoredValue::new(user);
    Effect::new(move |_| {
        let room = room.get();
        let mine = only_mine.get();
        revision.track();
        let token = chorus.session().token;
        leptos::task::spawn_local(async move {
            let user = mine.then(|| user.get_value());
            let page = session::activity(
                &token,
                &room,
                model::MESSAGE_TYPE,
                user.as_deref(),
                ACTIVITY_COUNT,
            )
            .await;
            match page {
                Ok(page) => {
                    let rows = page
                        .events
                        .iter()
                        .rev()
                        .map(|event| {
                            let (name, text) = model::body_fields(&event.body, &event.from);
                            (event.seq.unwrap_or_default(), name, text)
                        })
                        .collect();
                    _ = items.try_set(rows);
                    _ = error.try_set(None);
                }
                Err(why) => _ = error.try_set(Some(why)),
            }
        });
    });
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
                    each=move || items.get()
                    key=|(seq, _, _)| *seq
                    children=move |(seq, name, text)| {
                        view! {
                            <li data-seq=seq>
                                <span class="author">{name}</span>
                                <span class="text">{text}</span>
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
