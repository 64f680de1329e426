//! The activity feed over real HTTP on a real SQLite file: history filtered by type and by
//! sender, forward and backward, paged, and bad filters refused with `bad_request`.

mod support;

use chorus_sdk::wire::{ErrorCode, EventsPage};
use support::http;

use support::BACKEND_KEY as KEY;

async fn server(dir: &tempfile::TempDir) -> chorus_server::RunningServer {
    let mut config = support::backend_config();
    config.store = chorus_server::config::StoreKind::Sqlite;
    config.db = dir.path().join("activity.db");
    support::start(&config).await
}

async fn get(server: &chorus_server::RunningServer, path: &str) -> support::HttpResponse {
    let key = format!("Bearer {KEY}");
    http(server, "GET", path, &[("Authorization", &key)], None).await
}

fn seqs(page: &EventsPage) -> Vec<u64> {
    page.events.iter().map(|e| e.seq.unwrap()).collect()
}

/// Publishes the feed: seq n is (sender, body) of `FEED[n - 1]`.
const FEED: [(&str, &str); 7] = [
    ("ana", r#"{"type":"comment","text":"first"}"#),
    ("ben", r#"{"type":"like"}"#),
    ("ana", r#"{"type":"like"}"#),
    ("ben", r#"{"type":"comment","text":"second"}"#),
    ("cid", r#"{"text":"no type"}"#),
    ("ana", r#"{"type":"comment","text":"third"}"#),
    ("ben", r#"{"type":"comment","text":"fourth"}"#),
];

async fn publish_feed(server: &chorus_server::RunningServer) {
    let key = format!("Bearer {KEY}");
    for (n, (from, body)) in FEED.iter().enumerate() {
        let request = format!(r#"{{"id":"e{n}","from":"{from}","body":{body}}}"#);
        let response = http(
            server,
            "POST",
            "/v1/rooms/doc:1/events",
            &[("Authorization", &key)],
            Some(&request),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
    }
}

#[tokio::test]
async fn history_filters_by_type_and_sender_forward_and_backward() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir).await;
    publish_feed(&server).await;
    // (query, seqs, next_after, next_before)
    type Case<'a> = (&'a str, &'a [u64], Option<u64>, Option<u64>);
    let table: [Case<'_>; 10] = [
        ("type=comment", &[1, 4, 6, 7], None, None),
        ("type=comment&user=ana", &[1, 6], None, None),
        ("user=ben", &[2, 4, 7], None, None),
        ("type=poll", &[], None, None),
        ("type=comment&limit=2", &[1, 4], Some(4), None),
        ("type=comment&limit=2&after=4", &[6, 7], None, None),
        ("type=comment&before=7&limit=2", &[4, 6], None, Some(4)),
        ("type=comment&before=4&limit=2", &[1], None, None),
        ("before=3", &[1, 2], None, None),
        ("before=6&limit=1", &[5], None, Some(5)),
    ];
    for (query, expected, next_after, next_before) in table {
        let response = get(&server, &format!("/v1/rooms/doc:1/events?{query}")).await;
        assert_eq!(response.status, 200, "{query}: {}", response.body);
        let page = response.json::<EventsPage>();
        assert_eq!(
            (seqs(&page).as_slice(), page.next_after, page.next_before),
            (expected, next_after, next_before),
            "{query}"
        );
        assert_eq!((page.head, page.oldest), (7, 1));
    }
    // A user's token with a grant reads the feed too.
    let token = support::token("ana");
    let response = http(
        &server,
        "GET",
        "/v1/rooms/doc:1/events?type=like",
        &[("Authorization", &format!("Bearer {token}"))],
        None,
    )
    .await;
    assert_eq!(seqs(&response.json::<EventsPage>()), [2, 3]);
}

#[tokio::test]
async fn bad_filters_get_bad_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(&dir).await;
    let long = "x".repeat(65);
    for query in [
        "type=".to_owned(),
        format!("type={long}"),
        "user=%0A".to_owned(),
        "after=1&before=5".to_owned(),
        "before=soon".to_owned(),
        "before=-1".to_owned(),
    ] {
        let response = get(&server, &format!("/v1/rooms/doc:1/events?{query}")).await;
        assert_eq!(
            (response.status, response.error_code()),
            (400, ErrorCode::BadRequest),
            "{query}: {}",
            response.body
        );
    }
}
