//! One-off HTTP requests to a Chorus server's REST endpoints (history pages, presence, dev
//! tokens) for Rust programs and tools such as the `chorus` command-line client, dialled
//! through the same [`Connector`] as the client's own transports (so `https://` trusts the
//! same CAs, [`TlsOptions`]).
//!
//! It only carries bytes: the bodies are the wire types' (read them with `wire::json::from_str`),
//! and it must never hold client state.

use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;

use super::TlsOptions;
use super::tls::{self, Connector};

/// A server's REST API at one base URL.
///
/// ```no_run
/// use chorus_sdk::native::{HttpApi, TlsOptions};
/// use chorus_sdk::wire::{DevTokenRequest, DevTokenResponse, json};
///
/// # async fn run() -> Result<(), String> {
/// let api = HttpApi::new("http://127.0.0.1:8080", &TlsOptions::default());
/// let request = DevTokenRequest { name: "Ana".into(), ttl_seconds: None, rooms: None };
/// let body = json::to_string(&request);
/// let answer = api.request("POST", "/v1/dev/token", None, Some(body)).await?;
/// if answer.status == 200 {
///     let token: DevTokenResponse = json::from_str(&answer.body).map_err(|err| err.to_string())?;
///     println!("{}", token.token);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct HttpApi {
    base: String,
    http: HttpClient<Connector, Full<bytes::Bytes>>,
}

/// A server's answer: its status and body text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status code.
    pub status: u16,
    /// The body (JSON for every Chorus endpoint; an `ErrorBody` when the status is not 2xx).
    pub body: String,
}

impl HttpApi {
    /// The API of the server at `base_url` (`http://host:port` or `https://...`), trusting the
    /// CAs of `tls` for `https://`.
    pub fn new(base_url: &str, tls: &TlsOptions) -> HttpApi {
        let connector = Connector::new(base_url, tls);
        HttpApi {
            base: base_url.trim_end_matches('/').to_owned(),
            http: HttpClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `method path` (e.g. `GET /v1/rooms/doc%3A1/presence`) with an optional
    /// `Authorization: Bearer` token and JSON body. `Err` says why no answer came (a refused
    /// connection, a refused certificate, a URL that does not parse); any answer, including
    /// an error status, is `Ok`. Callers bound the wait themselves (`tokio::time::timeout`).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<String>,
    ) -> Result<HttpAnswer, String> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(bytes::Bytes::from(body.unwrap_or_default())))
            .map_err(|err| format!("bad request to {}{path}: {err}", self.base))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|err| tls::describe(&err))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| tls::describe(&err))?
            .to_bytes();
        let body = String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("the answer to {path} is not UTF-8"))?;
        Ok(HttpAnswer { status, body })
    }
}
