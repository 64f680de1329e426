//! Who is here: one avatar per user (initials, stable colour, status dot, tab count),
//! "+N more" beyond the first few, and a tooltip with the name and since when.

use std::time::Duration;

use chorus_sdk::wire::PresenceUser;
use leptos::prelude::*;

use crate::hooks::use_interval;
use crate::model::{self, Avatar};

/// The presence bar.
#[component]
pub fn PresenceBar(
    /// The room's presence from the SDK.
    #[prop(into)]
    users: Signal<Vec<PresenceUser>>,
) -> impl IntoView {
    // "here for N min" tooltips refresh every half minute.
    let now_ms = RwSignal::new(js_sys::Date::now() as u64);
    use_interval(Duration::from_secs(30), move || {
        now_ms.set(js_sys::Date::now() as u64)
    });
    let avatars = Memo::new(move |_| model::avatars(&users.read()));
    view! {
        <ul class="presence" aria-label="Who is here">
            <For
                each=move || avatars.get().0
                key=|avatar| format!("{}:{}:{}", avatar.user, avatar.activity.as_str(), avatar.tabs)
                children=move |avatar: Avatar| {
                    let title = move || {
                        let tabs = if avatar.tabs > 1 {
                            format!(" · {} tabs", avatar.tabs)
                        } else {
                            String::new()
                        };
                        format!(
                            "{} · {} · {}{tabs}",
                            avatar.name,
                            avatar.activity.as_str(),
                            model::here_for(avatar.since_ms, now_ms.get()),
                        )
                    };
                    view! {
                        <li
                            class=format!("avatar {}", avatar.activity.as_str())
                            style=format!("background-color: {}", avatar.colour)
                            title=title.clone()
                            aria-label=title
                            data-user=avatar.user.clone()
                        >
                            <span class="initials">{avatar.initials.clone()}</span>
                            <span class="status-dot" aria-hidden="true"></span>
                            {(avatar.tabs > 1)
                                .then(|| view! { <span class="tabs">{avatar.tabs}</span> })}
                        </li>
                    }
                }
            />
            {move || {
                let more = avatars.read().1;
                (more > 0)
                    .then(|| {
                        view! {
                            <li class="avatar more" aria-label=format!("{more} more people here")>
                                {format!("+{more}")}
                            </li>
                        }
                    })
            }}
        </ul>
    }
}
