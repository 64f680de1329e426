//! Remote live cursors on the room's shared surface: the app's cursor value (a point in
//! fractions of the surface) and where to draw each other member's, with whose name and colour.
//! Pure: tested natively.

use chorus_sdk::wire::{Json, LiveCursor, PresenceUser};
use serde::Deserialize;

use super::{colour, display_name};

/// One remote cursor to draw.
#[derive(Clone, Debug, PartialEq)]
pub struct CursorMark {
    /// The connection it belongs to (one per tab).
    pub conn: String,
    /// Its user's display name (from presence).
    pub name: String,
    /// Its user's colour (the same as the avatar's).
    pub colour: String,
    /// Across the surface, 0 (left) to 1 (right).
    pub x: f64,
    /// Down the surface, 0 (top) to 1 (bottom).
    pub y: f64,
}

/// The app's cursor value: where the pointer is, in fractions of the surface.
#[derive(Deserialize)]
struct Point {
    x: f64,
    y: f64,
}

/// The cursor value for a pointer at `(x, y)` (fractions of the surface, clamped to 0–1,
/// rounded to 1/1000 so the frames stay small).
pub fn cursor_value(x: f64, y: f64) -> Json {
    let round = |v: f64| (v.clamp(0.0, 1.0) * 1000.0).round() / 1000.0;
    Json::from_text(format!(r#"{{"x":{},"y":{}}}"#, round(x), round(y)))
        .expect("two numbers make JSON")
}

/// Where to draw each remote cursor: those whose value is a point (other apps on the same
/// room may use other shapes: they are left out), named and coloured by their user.
pub fn cursor_marks(cursors: &[LiveCursor], presence: &[PresenceUser]) -> Vec<CursorMark> {
    cursors
        .iter()
        .filter_map(|cursor| {
            let point: Point = cursor.value.decode().ok()?;
            Some(CursorMark {
                conn: cursor.conn.clone(),
                name: display_name(presence, &cursor.user),
                colour: colour(&cursor.user),
                x: point.x.clamp(0.0, 1.0),
                y: point.y.clamp(0.0, 1.0),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_cursors_are_placed_named_and_coloured_and_foreign_shapes_are_skipped() {
        let cursor = |conn: &str, user: &str, value: Json| LiveCursor {
            conn: conn.into(),
            user: user.into(),
            value,
        };
        let presence = vec![PresenceUser {
            user: "ana".into(),
            name: Some("Ana Lima".into()),
            conns: vec![],
        }];
        let cursors = [
            cursor("n-1", "ana", cursor_value(0.25, 1.7)),
            cursor("n-2", "ben", cursor_value(0.123456, -3.0)),
            cursor("n-3", "cal", Json::from_text(r#"{"sel":[1,2]}"#).unwrap()),
        ];
        assert_eq!(cursors[1].value.as_text(), r#"{"x":0.123,"y":0}"#);
        let marks = cursor_marks(&cursors, &presence);
        let placed: Vec<(&str, &str, f64, f64)> = marks
            .iter()
            .map(|m| (m.conn.as_str(), m.name.as_str(), m.x, m.y))
            .collect();
        assert_eq!(
            placed,
            [("n-1", "Ana Lima", 0.25, 1.0), ("n-2", "ben", 0.123, 0.0)]
        );
        assert_eq!(marks[0].colour, colour("ana"));
    }
}
