//! "Ana is typing…": who is typing right now, animated, cleared when they send or stop.

use leptos::prelude::*;

use crate::model;

/// The typing indicator.
#[component]
pub fn TypingIndicator(
    /// Display names of the people typing (never this user).
    #[prop(into)]
    names: Signal<Vec<String>>,
) -> impl IntoView {
    let sentence = Memo::new(move |_| model::typing_sentence(&names.read()));
    view! {
        <div class="typing" role="status" aria-live="polite">
            {move || {
                sentence
                    .get()
                    .map(|text| {
                        view! {
                            <span class="typing-dots" aria-hidden="true">
                                <i></i>
                                <i></i>
                                <i></i>
                            </span>
                            <span class="typing-text">{text}</span>
                        }
                    })
            }}
        </div>
    }
}
