//! A page of players as JSON, written straight into one buffer.
//!
//! The bytes are exactly what serde's derived `Serialize` gives for `PlayerPage` (the routes'
//! tests compare the two on awkward players), but the member names, ids, dates, timestamps,
//! positions and numbers are copied as they are: serde_json escapes every string it writes,
//! member names included, and a page of 50 players spent a fifth of its instructions there
//! (docs/benchmarks.md). Only text a client or the database supplied is escaped.

use super::{Player, timestamp};

/// `{"items":[...],"next_cursor":...}`.
pub fn page(items: &[Player], next_cursor: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + items.len() * 420);
    out.extend_from_slice(b"{\"items\":[");
    for (i, player) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_player(player, &mut out);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    match next_cursor {
        Some(cursor) => text(cursor, &mut out),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

/// The members in `Player`'s declaration order, as serde writes them.
fn write_player(p: &Player, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(
        p.id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"name\":");
    text(&p.name, out);
    out.extend_from_slice(b",\"date_of_birth\":");
    timestamp::append_date_json(&p.date_of_birth, out);
    out.extend_from_slice(b",\"country\":");
    text(&p.country, out);
    out.extend_from_slice(b",\"team\":");
    text(&p.team, out);
    out.extend_from_slice(b",\"position\":\"");
    out.extend_from_slice(p.position.as_str().as_bytes());
    out.extend_from_slice(b"\",\"club_number\":");
    number(p.club_number, out);
    out.extend_from_slice(b",\"national_team_number\":");
    number(p.national_team_number, out);
    out.extend_from_slice(b",\"version\":");
    serde_json::to_writer(&mut *out, &p.version).expect("a number serialises");
    out.extend_from_slice(b",\"created_at\":");
    timestamp::append_json(&p.created_at, out);
    out.extend_from_slice(b",\"updated_at\":");
    timestamp::append_json(&p.updated_at, out);
    out.extend_from_slice(b",\"created_by\":");
    text(&p.created_by, out);
    out.extend_from_slice(b",\"updated_by\":");
    text(&p.updated_by, out);
    out.push(b'}');
}

/// A JSON string. Text with no byte JSON must escape (a control character, `"` or `\`), which
/// is nearly all names, teams and actors, is copied as it is: serde_json's byte-by-byte escaping
/// cost three times as much. The rest goes through serde_json.
fn text(s: &str, out: &mut Vec<u8>) {
    // Every byte is tested (no early exit), so the compiler checks 16 at a time.
    let needs_escaping = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !needs_escaping {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("a str serialises");
    }
}

fn number(n: Option<i32>, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &n).expect("a number serialises");
}
