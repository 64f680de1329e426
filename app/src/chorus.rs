//! One Chorus client per app, shared through Leptos context: [`provide_chorus`] starts it for a
//! signed-in session and [`use_chorus`] hands it to every room view ([`crate::hooks::use_room`]),
//! so the app holds one connection however many rooms it shows.
//!
//! The client's events go to the app-wide signals here (connection state, outbox length) and to
//! each room view that listens. When the server asks for a token ([`ClientEvent::TokenNeeded`]:
//! the dev token expired), a fresh one is fetched for the same name and handed over, so the app
//! keeps working past a token's expiry. Nothing here renders.

use std::rc::Rc;

use chorus_sdk::client::{ClientEvent, Transport};
use chorus_sdk::web::{BrowserClient, ClientConfig, ConnectionState};
use chorus_sdk::wire::{Cursor, Json, Notice, PresenceUser, RoomName};
use leptos::prelude::*;

use crate::session::{self, Session};

/// A room view's event listener.
type Listener = Rc<dyn Fn(&ClientEvent)>;

/// The app's client and its app-wide signals. `Copy`: pass it around freely; it lives as long
/// as the owner that called [`provide_chorus`] (then the client is closed).
#[derive(Clone, Copy, Debug)]
pub struct Chorus {
    client: StoredValue<Option<BrowserClient>, LocalStorage>,
    state: RwSignal<ConnectionState>,
    queued: RwSignal<usize>,
    /// Why the client could not start, if it could not.
    problem: RwSignal<Option<String>>,
    /// The signed-in session; its token is replaced when renewed.
    session: StoredValue<Session>,
    listeners: StoredValue<Vec<(u64, Listener)>, LocalStorage>,
    next_listener: StoredValue<u64>,
    /// How many room views use each joined room (joined at the first, left after the last).
    joined: StoredValue<Vec<(RoomName, usize)>>,
    /// The latest notice from the backend (`ClientEvent::Notice`), until dismissed.
    backend_notice: RwSignal<Option<Notice>>,
}

/// Starts the app's client for `session` against the server at `url` and provides it as
/// context to everything below the calling component; closed when that component is disposed.
///
/// The outbox and remembered transport are kept in `localStorage` per user and per tab (the
/// SDK's layout under a `chorus-app.<user>.` prefix), so a reload while offline loses nothing and
/// two tabs never overwrite each other's; the tabs share one connection.
pub fn provide_chorus(url: &str, session: Session) -> Chorus {
    provide_chorus_with_sign_out(url, session, StoredValue::new(false))
}

/// [`provide_chorus`], but when the component is disposed with `signing_out` holding `true`,
/// the client is signed out ([`BrowserClient::sign_out`]: the user's stored outboxes are
/// dropped, never sent) rather than closed. For a "Sign out" that sets the flag and then ends
/// the session.
pub fn provide_chorus_with_sign_out(
    url: &str,
    session: Session,
    signing_out: StoredValue<bool>,
) -> Chorus {
    let chorus = Chorus {
        client: StoredValue::new_local(None),
        state: RwSignal::new(ConnectionState::Connecting {
            transport: Transport::WebSocket,
        }),
        queued: RwSignal::new(0),
        problem: RwSignal::new(None),
        session: StoredValue::new(session.clone()),
        listeners: StoredValue::new_local(Vec::new()),
        next_listener: StoredValue::new(0),
        joined: StoredValue::new(Vec::new()),
        backend_notice: RwSignal::new(None),
    };
    let on_event = move |event: ClientEvent| {
        match &event {
            // `try_*`: the client's last events (on close) may outlive the signals.
            ClientEvent::State(state) => _ = chorus.state.try_set(state.clone()),
            ClientEvent::Outbox { queued } => _ = chorus.queued.try_set(*queued),
            ClientEvent::TokenNeeded => chorus.renew_token(),
            ClientEvent::Notice(notice) => _ = chorus.backend_notice.try_set(Some(notice.clone())),
            _ => {}
        }
        // A copy of the list: a listener may add or remove listeners.
        let listeners: Vec<Listener> = chorus
            .listeners
            .try_with_value(|all| all.iter().map(|(_, l)| l.clone()).collect())
            .unwrap_or_default();
        for listener in listeners {
            listener(&event);
        }
    };
    // The SDK's layout keeps users and tabs apart under the prefix; the prefix names the
    // signed-in user too, so a token that is no JWT (the tests') still keeps them apart.
    let prefix = format!("chorus-app.{}.", session.user);
    match BrowserClient::start(
        url,
        session.token,
        ClientConfig::default(),
        prefix,
        on_event,
    ) {
        Ok(client) => {
            chorus.state.set(client.state());
            chorus.queued.set(client.outbox_len());
            chorus.client.set_value(Some(client));
        }
        Err(error) => chorus.problem.set(Some(format!("Cannot start: {error}"))),
    }
    on_cleanup(move || {
        chorus.client.update_value(|client| match client.take() {
            Some(client) if signing_out.get_value() => client.sign_out(),
            Some(client) => client.close(),
            None => {}
        });
    });
    provide_context(chorus);
    chorus
}

/// The client provided by an enclosing [`provide_chorus`].
///
/// # Panics
/// When no enclosing component called [`provide_chorus`] (a programming error).
pub fn use_chorus() -> Chorus {
    expect_context::<Chorus>()
}

impl Chorus {
    /// The connection state (read-only).
    pub fn state(&self) -> ReadSignal<ConnectionState> {
        self.state.read_only()
    }

    /// Publishes waiting for the server's ack (read-only).
    pub fn queued(&self) -> ReadSignal<usize> {
        self.queued.read_only()
    }

    /// The latest notice from the application's backend, until [`Chorus::dismiss_backend_notice`].
    pub fn backend_notice(&self) -> ReadSignal<Option<Notice>> {
        self.backend_notice.read_only()
    }

    /// Hides the backend notice shown.
    pub fn dismiss_backend_notice(&self) {
        self.backend_notice.set(None);
    }

    /// Why the client could not start (`None` when it runs).
    pub fn problem(&self) -> ReadSignal<Option<String>> {
        self.problem.read_only()
    }

    /// The signed-in session, with the current token.
    pub fn session(&self) -> Session {
        self.session.get_value()
    }

    /// Runs `f` on the client, if it runs (not after the owner is disposed or a failed start).
    pub(crate) fn with_client<T>(&self, f: impl FnOnce(&BrowserClient) -> T) -> Option<T> {
        self.client
            .try_with_value(|client| client.as_ref().map(f))
            .flatten()
    }

    /// The live cursor of a joined room.
    pub(crate) fn cursor(&self, room: &RoomName) -> Option<Cursor> {
        self.with_client(|c| c.cursor(room)).flatten()
    }

    /// Everyone present in a joined room now.
    pub(crate) fn presence(&self, room: &RoomName) -> Vec<PresenceUser> {
        self.with_client(|c| c.presence(room))
            .flatten()
            .unwrap_or_default()
    }

    /// Calls `listener` with every client event until [`Chorus::unlisten`] with the returned id.
    pub(crate) fn listen(&self, listener: impl Fn(&ClientEvent) + 'static) -> u64 {
        let id = self.next_listener.get_value();
        self.next_listener.set_value(id + 1);
        self.listeners
            .update_value(|all| all.push((id, Rc::new(listener))));
        id
    }

    pub(crate) fn unlisten(&self, id: u64) {
        _ = self
            .listeners
            .try_update_value(|all| all.retain(|(l, _)| *l != id));
    }

    /// Joins `room` for one more view (the client joins it at the first).
    pub(crate) fn hold(&self, room: &RoomName, meta: Json) {
        let first = self
            .joined
            .try_update_value(|joined| match joined.iter_mut().find(|(r, _)| r == room) {
                Some((_, count)) => {
                    *count += 1;
                    false
                }
                None => {
                    joined.push((room.clone(), 1));
                    true
                }
            })
            .unwrap_or(false);
        if first {
            self.with_client(|c| c.join(room.clone(), meta));
        }
    }

    /// One view less uses `room` (the client leaves it after the last).
    pub(crate) fn release(&self, room: &RoomName) {
        let last = self
            .joined
            .try_update_value(|joined| {
                let Some(at) = joined.iter().position(|(r, _)| r == room) else {
                    return false;
                };
                joined[at].1 -= 1;
                if joined[at].1 > 0 {
                    return false;
                }
                joined.swap_remove(at);
                true
            })
            .unwrap_or(false);
        if last {
            self.with_client(|c| c.leave(room.clone()));
        }
    }

    /// Fetches a fresh dev token for the signed-in name and hands it to the client. Failing
    /// (offline, server down) hands over no token, which the client takes as a passing failure:
    /// it asks again after its next backoff step.
    fn renew_token(self) {
        let Some(name) = self.session.try_with_value(|s| s.name.clone()) else {
            return;
        };
        leptos::task::spawn_local(async move {
            let token = match session::sign_in(&name).await {
                Ok(fresh) => {
                    _ = self.session.try_set_value(fresh.clone());
                    fresh.token
                }
                Err(_) => String::new(),
            };
            self.with_client(|c| c.set_token(token));
        });
    }
}
