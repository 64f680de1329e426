//! `chorus token`: a token from a dev-mode server (`POST /v1/dev/token`, only served with
//! `chorus-server --dev`), printed alone on stdout so that
//! `export CHORUS_TOKEN=$(chorus token --user ana)` works.

use chorus_sdk::wire::{self, DevTokenRequest, DevTokenResponse};
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
    /// Print the server's whole answer, `{"token":...,"user":...}`, instead of the token alone.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(server: &ServerOptions, args: TokenArgs) -> Result<(), Failure> {
    let api = server.api()?;
    let request = DevTokenRequest {
        name: args.user,
        ttl_seconds: args.ttl,
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
