//! The room's shared surface: the shared notes (a document everyone edits at once,
//! `NotesEditor`), where everyone's pointer shows live, each with its user's name and colour. This tab's pointer goes out as its live cursor (a point in fractions
//! of the surface, so it lands in the same place on any screen size) and is hidden when the
//! pointer leaves.

use chorus_sdk::wire::Json;
use leptos::prelude::*;

use super::NotesEditor;
use crate::hooks::RoomHandle;
use crate::model;
use crate::shared_notes::use_shared_notes;

/// The shared surface of a room view.
#[component]
pub fn SharedSurface(
    /// The room it belongs to (from `use_room`).
    handle: RoomHandle,
) -> impl IntoView {
    let presence = handle.presence();
    let cursors = handle.cursors();
    let marks = Memo::new(move |_| model::cursor_marks(cursors.read().list(), &presence.read()));
    let surface = NodeRef::<leptos::html::Div>::new();
    let notes = use_shared_notes(handle.room());
    let on_move = move |event: leptos::ev::PointerEvent| {
        let Some(element) = surface.get() else {
            return;
        };
        let rect = element.get_bounding_client_rect();
        if rect.width() <= 0.0 || rect.height() <= 0.0 {
            return;
        }
        let x = (f64::from(event.client_x()) - rect.left()) / rect.width();
        let y = (f64::from(event.client_y()) - rect.top()) / rect.height();
        handle.set_cursor(model::cursor_value(x, y));
    };
    view! {
        <div
            class="surface"
            node_ref=surface
            aria-label="Shared surface: everyone's pointer shows here"
            on:pointermove=on_move
            on:pointerleave=move |_| handle.set_cursor(Json::null())
        >
            <p class="surface-hint">"Point here: the others see where, live."</p>
            <NotesEditor notes=notes />
            {move || {
                marks
                    .get()
                    .into_iter()
                    .map(|mark| {
                        let style = format!(
                            "left: {:.1}%; top: {:.1}%; --cursor-colour: {}",
                            mark.x * 100.0,
                            mark.y * 100.0,
                            mark.colour,
                        );
                        view! {
                            <div class="cursor-mark" style=style data-conn=mark.conn>
                                <span class="cursor-arrow" aria-hidden="true"></span>
                                <span class="cursor-name">{mark.name}</span>
                            </div>
                        }
                    })
                    .collect_view()
            }}
        </div>
    }
}
