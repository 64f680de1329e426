//! The body every benchmark publish carries, `{"bench":[step,sent_us],"pad":"..."}`, and the
//! scan that finds it again in a received frame of any protocol.
//!
//! Receivers do not decode delivered frames: they look for the `"bench":[` marker and read two
//! integers after it, so the generator spends the same per delivery whatever the server under
//! test wraps the body in (a Chorus `event` frame or a Socket.IO `42["msg",...]` packet).

/// The marker the scan looks for. It appears nowhere else in any frame of the benchmark.
const MARKER: &str = "\"bench\":[";

/// Bytes of padding, so each delivery is about the size of a small chat message or cursor
/// update (the whole body is about 100 bytes).
const PAD: usize = 64;

/// A publish's body: which step of the scenario sent it and when it was due (microseconds on
/// the generator's clock).
pub fn body(step: u32, sent_us: u64) -> String {
    format!(
        r#"{{"bench":[{step},{sent_us}],"pad":"{}"}}"#,
        "x".repeat(PAD)
    )
}

/// The `(step, sent_us)` carried by a frame, or `None` when the frame has no benchmark body.
pub fn scan(frame: &str) -> Option<(u32, u64)> {
    let at = frame.find(MARKER)? + MARKER.len();
    let rest = &frame[at..];
    let (step, rest) = rest.split_once(',')?;
    let end = rest.find(']')?;
    Some((step.trim().parse().ok()?, rest[..end].trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_found_in_any_frame() {
        fn check(frame: &str, expect: Option<(u32, u64)>) {
            assert_eq!(scan(frame), expect, "{frame}");
        }
        let chorus = format!(
            r#"{{"type":"event","room":"r","seq":4,"id":"p-1","from":"u1","at":1,"body":{}}}"#,
            body(3, 1_234_567)
        );
        check(&chorus, Some((3, 1_234_567)));
        check(&format!(r#"42["msg",{}]"#, body(0, 9)), Some((0, 9)));
        check(r#"{"bench":[ 1 , 2 ]}"#, Some((1, 2)));
        check(r#"{"type":"ack","room":"r","id":"p-1","seq":4}"#, None);
        check(r#"{"bench":[1]}"#, None);
        check(r#"{"bench":[x,2]}"#, None);
        check(r#"{"bench":[1,2"#, None);
        check("", None);
    }

    #[test]
    fn bodies_are_json_of_about_a_hundred_bytes() {
        let text = body(u32::MAX, u64::MAX);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["bench"][0], u64::from(u32::MAX));
        assert!((80..=120).contains(&body(2, 12_345_678).len()));
    }
}
