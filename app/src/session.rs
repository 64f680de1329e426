//! The HTTP requests the app makes itself: a dev-mode token for a display name (kept in
//! `localStorage`, so a reload keeps the identity), pages of room history and activity, and
//! what the shared notes lack.
//!
//! Both go through gloo (`gloo-net`'s `Request` for `fetch`, `gloo-storage`'s `LocalStorage`),
//! so this file holds no web-sys glue of its own.

use chorus_sdk::wire::{self, DevTokenRequest, DevTokenResponse, ErrorBody, EventsPage, RoomName};
use gloo_net::http::Request;
use gloo_storage::{LocalStorage, Storage};

const SESSION_KEY: &str = "chorus-app.session";

/// Who this browser is: the dev token and what it names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    /// The display name typed in.
    pub name: String,
    /// The user id the server derived from it.
    pub user: String,
    /// The token the SDK connects with.
    pub token: String,
}

/// The server's origin (the app is served by the server it talks to).
pub fn server_url() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// The session saved by an earlier visit.
pub fn saved() -> Option<Session> {
    LocalStorage::get(SESSION_KEY).ok()
}

/// Forgets the saved session (sign out).
pub fn forget() {
    LocalStorage::delete(SESSION_KEY);
}

/// Sends `request` and answers the body of a successful response, or a sentence saying why
/// not (the server's own message when it sent an `ErrorBody`).
async fn send(request: Result<Request, gloo_net::Error>) -> Result<String, String> {
    let response = request
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|_| "the server cannot be reached")?;
    let text = response.text().await.unwrap_or_default();
    if response.ok() {
        Ok(text)
    } else {
        Err(serde_json::from_str::<ErrorBody>(&text)
            .map(|e| e.message)
            .unwrap_or_else(|_| format!("the server answered {}", response.status())))
    }
}

/// `GET url` with `token`, its JSON answer read as `T`.
async fn get_json<T: serde::de::DeserializeOwned>(token: &str, url: &str) -> Result<T, String> {
    let request = Request::get(url).header("authorization", &format!("Bearer {token}"));
    let text = send(request.build()).await?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Asks the server (in dev mode) for a token for `name` and saves the session.
pub async fn sign_in(name: &str) -> Result<Session, String> {
    let body = DevTokenRequest {
        name: name.to_owned(),
        ttl_seconds: None,
        rooms: None,
    };
    let url = format!("{}/v1/dev/token", server_url());
    let text = send(Request::post(&url).json(&body)).await?;
    let answer: DevTokenResponse = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let session = Session {
        name: name.to_owned(),
        user: answer.user,
        token: answer.token,
    };
    // Storage full or forbidden: the session still works until the page is reloaded.
    let _ = LocalStorage::set(SESSION_KEY, &session);
    Ok(session)
}

/// The activity panel's page: the newest `count` events of `event_type` in `room` (only
/// `user`'s, when given), oldest first; the server filters them (`?type=&user=&before=`).
pub async fn activity(
    token: &str,
    room: &RoomName,
    event_type: &str,
    user: Option<&str>,
    count: u64,
) -> Result<EventsPage, String> {
    let mut url = [
        server_url().as_str(),
        "/v1/rooms/",
        &wire::percent_encode(room.as_str()),
        "/events?type=",
        &wire::percent_encode(event_type),
        "&before=9007199254740992&limit=",
        &count.to_string(),
    ]
    .concat();
    if let Some(user) = user {
        url.push_str("&user=");
        url.push_str(&wire::percent_encode(user));
    }
    get_json(token, &url).await
}

/// What a shared document lacks (`path`: `SharedDoc::state_path`, the document's read with
/// its state vector).
pub async fn doc_state(token: &str, path: &str) -> Result<wire::DocState, String> {
    let url = [server_url().as_str(), path].concat();
    get_json(token, &url).await
}

/// The last `count` events of a room up to seq `up_to` (the latest when `None`).
pub async fn history(
    token: &str,
    room: &RoomName,
    up_to: Option<u64>,
    count: u64,
) -> Result<EventsPage, String> {
    let after = up_to.map_or(0, |seq| seq.saturating_sub(count));
    let url = [server_url(), wire::events_path(room, after, count)].concat();
    let mut page: EventsPage = get_json(token, &url).await?;
    if let Some(up_to) = up_to {
        page.events
            .retain(|e| e.seq.is_some_and(|seq| seq <= up_to));
    }
    Ok(page)
}
