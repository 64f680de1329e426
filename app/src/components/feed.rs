//! The message feed (pending messages marked until the server confirms them) and the
//! composer that publishes and reports typing.

use leptos::prelude::*;

use crate::model::{Delivery, Message};

/// The message feed, oldest first.
#[component]
pub fn Feed(
    /// The messages to show.
    #[prop(into)]
    messages: Signal<Vec<Message>>,
) -> impl IntoView {
    view! {
        <ol class="feed" role="log" aria-label="Messages" aria-live="polite">
            <For
                each=move || messages.get()
                key=|m| (m.id.clone(), m.delivery.clone())
                children=move |m: Message| {
                    let (class, note) = match &m.delivery {
                        Delivery::Pending => ("pending", "pending".to_owned()),
                        Delivery::Confirmed => ("confirmed", String::new()),
                        Delivery::Failed(why) => ("failed", format!("not sent: {why}")),
                        Delivery::Streaming(_) => ("streaming", "…".to_owned()),
                    };
                    view! {
                        <li class=format!("message {class}") data-id=m.id.to_string()>
                            <span class="author">{m.name}</span>
                            <span class="text">{m.text}</span>
                            {(!note.is_empty()).then(|| view! { <span class="note">{note}</span> })}
                        </li>
                    }
                }
            />
        </ol>
    }
}

/// The message box: Enter or the button sends; typing is reported while there is text.
#[component]
pub fn Composer(
    /// Called with the trimmed text to send.
    on_send: Callback<String>,
    /// Called with whether the user is typing.
    on_typing: Callback<bool>,
    /// Writing is not allowed now (someone else holds the room's edit lock).
    #[prop(into, optional)]
    disabled: Signal<bool>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let value = text.get_untracked().trim().to_owned();
        if !value.is_empty() {
            on_send.run(value);
        }
        text.set(String::new());
    };
    view! {
        <form class="composer" on:submit=submit>
            <label for="message">"Message"</label>
            <input
                id="message"
                autocomplete="off"
                placeholder="Say something…"
                disabled=move || disabled.get()
                prop:value=move || text.get()
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    on_typing.run(!value.trim().is_empty());
                    text.set(value);
                }
            />
            <button type="submit" disabled=move || disabled.get()>
                "Send"
            </button>
        </form>
    }
}
