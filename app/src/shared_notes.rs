//! The room's shared notes: one Yjs document (`notes`, its text `body`) that everyone in the
//! room edits at once, kept in step by the SDK's [`SharedDoc`] (docs/PROTOCOL.md, "Documents").
//! The npm package's `ChorusProvider` edits the same document from a JS page.
//!
//! [`use_shared_notes`] follows the room: it applies the room's document events, reads what it
//! lacks from the server on every `joined` and `reset`, and publishes local edits (gathered for
//! [`FLUSH`]) through the client's outbox, so edits made offline are sent when it is back.

use std::time::Duration;

use chorus_sdk::client::ClientEvent;
use chorus_sdk::docs::SharedDoc;
use chorus_sdk::wire::{EventId, RoomName};
use leptos::prelude::*;
use yrs::{GetString, Text, Transact};

use crate::chorus::{Chorus, use_chorus};
use crate::{model, session};

/// The document's name in the room, and its text.
pub const NOTES_DOC: &str = "notes";
const NOTES_TEXT: &str = "body";

/// Local edits within this long go out as one event.
const FLUSH: Duration = Duration::from_millis(100);

/// The shared notes of the room a view shows.
#[derive(Clone, Copy, Debug)]
pub struct SharedNotes {
    room: Signal<RoomName>,
    text: RwSignal<String>,
    doc: StoredValue<Option<SharedDoc>, LocalStorage>,
    flush_due: StoredValue<bool>,
    chorus: Chorus,
}

impl SharedNotes {
    /// The notes' text now.
    pub fn text(&self) -> ReadSignal<String> {
        self.text.read_only()
    }

    /// The user changed the text to `new`: the change goes into the document as the smallest
    /// delete and insert (one common prefix and suffix), and out within [`FLUSH`].
    pub fn edit(&self, new: &str) {
        let changed = self.doc.with_value(|doc| {
            let Some(doc) = doc else { return false };
            let text = doc.doc().get_or_insert_text(NOTES_TEXT);
            let mut txn = doc.doc().transact_mut();
            let old = text.get_string(&txn);
            let (at, removed, inserted) = model::text_splice(&old, new);
            if removed == 0 && inserted.is_empty() {
                return false;
            }
            if removed > 0 {
                text.remove_range(&mut txn, at, removed);
            }
            if !inserted.is_empty() {
                text.insert(&mut txn, at, inserted);
            }
            true
        });
        if changed {
            self.text.set(new.to_owned());
            self.schedule_flush();
        }
    }

    fn schedule_flush(self) {
        if self.flush_due.get_value() {
            return;
        }
        self.flush_due.set_value(true);
        set_timeout(
            move || {
                _ = self.flush_due.try_set_value(false);
                self.flush();
            },
            FLUSH,
        );
    }

    /// Publishes the local edits waiting.
    fn flush(self) {
        let Some(room) = self.room.try_get_untracked() else {
            return;
        };
        let body = self
            .doc
            .try_with_value(|doc| doc.as_ref().and_then(SharedDoc::take_local))
            .flatten();
        if let Some(body) = body {
            // Refused only before the room is joined or after the client closed.
            self.chorus.with_client(|c| c.publish(room, body));
        }
    }

    /// Shows the document's text after a change that came from the room.
    fn refresh(&self) {
        let text = self.doc.with_value(|doc| doc.as_ref().map(current_text));
        if let Some(text) = text {
            _ = self.text.try_set(text);
        }
    }

    fn apply(&self, event: &ClientEvent) {
        let Some(room) = self.room.try_get_untracked() else {
            return;
        };
        let applied = |body| {
            self.doc
                .try_with_value(|doc| doc.as_ref().is_some_and(|d| d.apply_event(body)))
                .unwrap_or(false)
        };
        match event {
            ClientEvent::Event { event, .. } if event.room == room && applied(&event.body) => {
                self.refresh();
            }
            ClientEvent::Pending { room: r, body, .. } if r == &room && applied(body) => {
                self.refresh();
            }
            ClientEvent::Joined { room: r, .. } | ClientEvent::Reset { room: r, .. }
                if r == &room =>
            {
                self.sync(room);
            }
            _ => {}
        }
    }

    /// Reads what the document lacks from the server and publishes what the server lacks.
    fn sync(self, room: RoomName) {
        let Some(path) = self
            .doc
            .try_with_value(|doc| doc.as_ref().map(|d| d.state_path(&room)))
            .flatten()
        else {
            return;
        };
        let token = self.chorus.session().token;
        leptos::task::spawn_local(async move {
            let Ok(state) = session::doc_state(&token, &path).await else {
                // Offline or refused: the next `joined` reads it again.
                return;
            };
            if self.room.try_get_untracked().as_ref() != Some(&room) {
                return;
            }
            let publish = self
                .doc
                .try_with_value(|doc| doc.as_ref().map(|d| d.apply_state(&state)))
                .flatten();
            if let Some(Ok(Some(body))) = publish {
                self.chorus.with_client(|c| c.publish(room, body));
            }
            self.refresh();
        });
    }

    /// Starts on `room`'s document, empty until the server's answer (or the room's events) fill it.
    fn show(&self, room: &RoomName) {
        let name = EventId::parse(NOTES_DOC).expect("a valid document name");
        self.doc.set_value(Some(SharedDoc::new(name)));
        self.text.set(String::new());
        if self.chorus.cursor(room).is_some() {
            // Joined already (another view holds the room): no `joined` is coming.
            self.sync(room.clone());
        }
    }
}

fn current_text(doc: &SharedDoc) -> String {
    let text = doc.doc().get_or_insert_text(NOTES_TEXT);
    text.get_string(&doc.doc().transact())
}

/// The shared notes of the room named by `room`, following it when it changes.
///
/// # Panics
/// Outside a component tree that called [`provide_chorus`](crate::chorus::provide_chorus).
pub fn use_shared_notes(room: Signal<RoomName>) -> SharedNotes {
    let chorus = use_chorus();
    let notes = SharedNotes {
        room,
        text: RwSignal::new(String::new()),
        doc: StoredValue::new_local(None),
        flush_due: StoredValue::new(false),
        chorus,
    };
    notes.show(&room.get_untracked());
    let listener = chorus.listen(move |event| notes.apply(event));
    Effect::watch(
        move || room.get(),
        move |next, previous, _| {
            if previous != Some(next) {
                notes.flush();
                notes.show(next);
            }
        },
        false,
    );
    on_cleanup(move || {
        notes.flush();
        chorus.unlisten(listener);
    });
    notes
}
