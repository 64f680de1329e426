//! The two HTTP requests the app makes itself: a dev-mode token for a display name (kept in
//! `localStorage`, so a reload keeps the identity) and a page of room history.

use chorus_sdk::wire::{self, DevTokenRequest, DevTokenResponse, EventsPage, RoomName};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestInit, Response};

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

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The session saved by an earlier visit.
pub fn saved() -> Option<Session> {
    let text = storage()?.get_item(SESSION_KEY).ok()??;
    serde_json::from_str(&text).ok()
}

/// Forgets the saved session (sign out).
pub fn forget() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(SESSION_KEY);
    }
}

async fn request(
    url: &str,
    method: &str,
    token: Option<&str>,
    body: Option<String>,
) -> Result<String, String> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        init.set_body(&body.into());
    }
    let request = Request::new_with_str_and_init(url, &init).map_err(|_| "bad request URL")?;
    let headers = request.headers();
    if body.is_some() {
        let _ = headers.set("content-type", "application/json");
    }
    if let Some(token) = token {
        let _ = headers.set("authorization", &format!("Bearer {token}"));
    }
    let window = web_sys::window().ok_or("no window")?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| "the server cannot be reached")?
        .dyn_into()
        .map_err(|_| "not a response")?;
    let text = JsFuture::from(response.text().map_err(|_| "no body")?)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    if response.ok() {
        Ok(text)
    } else {
        Err(serde_json::from_str::<chorus_sdk::wire::ErrorBody>(&text)
            .map(|e| e.message)
            .unwrap_or_else(|_| format!("the server answered {}", response.status())))
    }
}

/// Asks the server (in dev mode) for a token for `name` and saves the session.
pub async fn sign_in(name: &str) -> Result<Session, String> {
    let body = serde_json::to_string(&DevTokenRequest {
        name: name.to_owned(),
    })
    .map_err(|e| e.to_string())?;
    let text = request(
        &format!("{}/v1/dev/token", server_url()),
        "POST",
        None,
        Some(body),
    )
    .await?;
    let answer: DevTokenResponse = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let session = Session {
        name: name.to_owned(),
        user: answer.user,
        token: answer.token,
    };
    if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(&session)) {
        let _ = storage.set_item(SESSION_KEY, &text);
    }
    Ok(session)
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
    let text = request(&url, "GET", Some(token), None).await?;
    let mut page: EventsPage = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    if let Some(up_to) = up_to {
        page.events
            .retain(|e| e.seq.is_some_and(|seq| seq <= up_to));
    }
    Ok(page)
}
