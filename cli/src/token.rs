//! `chorus token`: a token from a dev-mode server (`POST /v1/dev/token`, only served with
//! `chorus-server --dev`), printed alone on stdout so that
//! `export CHORUS_TOKEN=$(chorus token --user ana)` works.

use chorus_sdk::wire::{self, DevTokenRequest, DevTokenResponse, RoomRight};
use clap::Args;

use crate::connect::{self, Failure, ServerOptions};
use crate::output;

/// `chorus token` arguments.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The display name to get a token for (the user id is derived from it: `Ana B` → `ana-b`).
    #[arg(long, default_value = "cli")]
    user: String,
    /// How long the token is valid, in seconds (1 to 43200; the server's default is 12 hours).
    #[arg(long, value_name = "SECS")]
    ttl: Option<u64>,
    /// The token's room grants, as `PATTERN=RIGHT` (right: `read` or `publish`), comma-separated
    /// or repeated, e.g. `--rooms 'doc:*=publish,lobby=read'` [default: publish on every room].
    #[arg(long, value_name = "PATTERN=RIGHT", value_delimiter = ',', value_parser = grant)]
    rooms: Vec<(String, RoomRight)>,
    /// Print the server's whole answer, `{"token":...,"user":...}`, instead of the token alone.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(server: &ServerOptions, args: TokenArgs) -> Result<(), Failure> {
    let api = server.api()?;
    let request = DevTokenRequest {
        name: args.user,
        ttl_seconds: args.ttl,
        rooms: (!args.rooms.is_empty()).then(|| args.rooms.into_iter().collect()),
    };
    let body = wire::json::to_string(&request);
    let answer = connect::request(&api, "POST", "/v1/dev/token", None, Some(body)).await?;
    if answer.status == 404 {
        return Err(Failure::answered(&answer).with_hint(
            "the server is not in dev mode: it issues tokens only when started with --dev",
        ));
    }
    if answer.status != 200 {
        return Err(Failure::answered(&answer));
    }
    let token: DevTokenResponse = wire::json::from_str(&answer.body)
        .map_err(|err| Failure::io(format!("the server's token answer does not read: {err}")))?;
    let line = if args.json {
        wire::json::to_string(&token)
    } else {
        token.token
    };
    output::line(&line);
    Ok(())
}

/// Reads one `--rooms` grant, `PATTERN=RIGHT`.
fn grant(text: &str) -> Result<(String, RoomRight), String> {
    let (pattern, right) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}` is not PATTERN=RIGHT (e.g. doc:*=publish)"))?;
    let right = RoomRight::from_wire(right)
        .ok_or_else(|| format!("`{right}` is not a right: read or publish"))?;
    if pattern.is_empty() {
        return Err(format!("`{text}` has no room pattern"));
    }
    Ok((pattern.to_owned(), right))
}
