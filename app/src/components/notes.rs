//! The shared notes editor: a text area on the room's shared document (`shared_notes`), which
//! everyone in the room edits at once. A change from someone else keeps this tab's caret on the
//! same text (moved by what was inserted or removed before it).

use leptos::prelude::*;

use crate::shared_notes::SharedNotes;

/// The notes of a room view (from `use_shared_notes`).
#[component]
pub fn NotesEditor(
    /// The room's shared notes.
    notes: SharedNotes,
) -> impl IntoView {
    let text = notes.text();
    let area = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        let value = text.get();
        let Some(element) = area.get() else {
            return;
        };
        let shown = element.value();
        if shown == value {
            return;
        }
        let units = |s: &str| s.encode_utf16().count() as u32;
        let same: u32 = shown
            .encode_utf16()
            .zip(value.encode_utf16())
            .take_while(|(a, b)| a == b)
            .count() as u32;
        let moved = |at: u32| {
            if at <= same {
                at
            } else {
                (i64::from(at) + i64::from(units(&value)) - i64::from(units(&shown)))
                    .max(i64::from(same)) as u32
            }
        };
        let (start, end) = (
            element.selection_start().ok().flatten(),
            element.selection_end().ok().flatten(),
        );
        element.set_value(&value);
        if let (Some(start), Some(end)) = (start, end) {
            _ = element.set_selection_range(moved(start), moved(end));
        }
    });
    view! {
        <label class="notes">
            <span class="notes-title">"Shared notes"</span>
            <textarea
                class="notes-text"
                node_ref=area
                rows="4"
                placeholder="Everyone here edits these notes at once."
                on:input=move |event| notes.edit(&event_target_value(&event))
            ></textarea>
        </label>
    }
}
