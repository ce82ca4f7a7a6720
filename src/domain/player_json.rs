//! A page of players as JSON, written straight into one buffer.
//!
//! The bytes are exactly what serde's derived `Serialize` gives for `PlayerPage` (the routes'
//! tests compare the two on awkward players), but the member names, ids, dates, timestamps,
//! positions and numbers are copied as they are: serde_json escapes every string it writes,
//! member names included, and a page of 50 players spent a fifth of its instructions there
//! (docs/benchmarks.md). Only text a client or the database supplied is escaped.

use super::{PlayerList, PlayerRef, timestamp};

/// `{"items":[...],"next_cursor":...}`.
pub fn page(items: &PlayerList, next_cursor: Option<&str>) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + items.iter().map(json_len_hint).sum::<usize>());
    out.extend_from_slice(b"{\"items\":[");
    for (i, (player, needs_escaping)) in items.iter_escaping().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_player(player, needs_escaping, &mut out);
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    match next_cursor {
        Some(cursor) => text(cursor, &mut out),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    out
}

/// About the length of `p`'s JSON: 384 bytes for the names, punctuation, id, numbers, date and
/// times (at most 367), plus its text unescaped. Short of it, the page's buffer would be copied
/// into one twice its size when nearly written (the text of a player created by a Cognito user
/// alone is over 100 bytes: `user:` and a UUID, twice).
fn json_len_hint(p: PlayerRef<'_>) -> usize {
    384 + p.name.len() + p.country.len() + p.team.len() + p.created_by.len() + p.updated_by.len()
}

/// The members in `Player`'s declaration order, as serde writes them. Its text is copied as it
/// is unless some of it `needs_escaping`.
fn write_player(p: PlayerRef<'_>, needs_escaping: bool, out: &mut Vec<u8>) {
    let text = if needs_escaping { text } else { plain_text };
    out.extend_from_slice(b"{\"id\":\"");
    out.extend_from_slice(
        p.id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
    out.extend_from_slice(b"\",\"name\":");
    text(p.name, out);
    out.extend_from_slice(b",\"date_of_birth\":");
    timestamp::append_date_json(&p.date_of_birth, out);
    out.extend_from_slice(b",\"country\":");
    text(p.country, out);
    out.extend_from_slice(b",\"team\":");
    text(p.team, out);
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
    text(p.created_by, out);
    out.extend_from_slice(b",\"updated_by\":");
    text(p.updated_by, out);
    out.push(b'}');
}

/// A JSON string. Text with no byte JSON must escape, which is nearly all names, teams and
/// actors, is copied as it is: serde_json's byte-by-byte escaping cost three times as much. The
/// rest goes through serde_json.
fn text(s: &str, out: &mut Vec<u8>) {
    if needs_escaping(s.as_bytes()) {
        serde_json::to_writer(out, s).expect("a str serialises");
    } else {
        plain_text(s, out);
    }
}

/// A JSON string of text known to need no escaping.
fn plain_text(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether `text` has a byte that JSON escapes: a control character, `"` or `\`.
pub(super) fn needs_escaping(text: &[u8]) -> bool {
    // Every byte is tested (no early exit), so the compiler checks 16 at a time.
    text.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

fn number(n: Option<i32>, out: &mut Vec<u8>) {
    serde_json::to_writer(out, &n).expect("a number serialises");
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, NaiveDate};

    use super::*;
    use crate::domain::{Player, Position};

    /// The hint is never short for the longest values of every fixed-size member, so a page
    /// of players without text to escape is written in the buffer it starts with.
    #[test]
    fn the_length_hint_covers_the_longest_fixed_members() {
        let long_ago = DateTime::from_timestamp_micros(-62_135_596_800_000_000 + 999_999).unwrap();
        let player = Player {
            id: uuid::Uuid::now_v7(),
            name: "Kylian Mbappé".into(),
            date_of_birth: NaiveDate::from_ymd_opt(-9999, 12, 31).unwrap(),
            country: "FRA".into(),
            team: "Real Madrid".into(),
            position: Position::Goalkeeper,
            club_number: Some(i32::MIN),
            national_team_number: Some(i32::MIN),
            version: i64::MIN,
            created_at: long_ago,
            updated_at: long_ago,
            created_by: "user:2b1a6f0e-3c3a-4b7e-9a3c-1d2e3f4a5b6c".into(),
            updated_by: "user:2b1a6f0e-3c3a-4b7e-9a3c-1d2e3f4a5b6c".into(),
        };
        let items: PlayerList = std::iter::repeat_n(player.borrowed(), 51).collect();
        let written = page(&items, None);
        let hint = 32 + items.iter().map(json_len_hint).sum::<usize>();
        assert!(
            written.len() <= hint,
            "{} bytes, hint {hint}",
            written.len()
        );
    }

    /// Whether text is escaped is decided player by player: plain players between players
    /// whose first (name) or last (updated_by) text needs escaping come out as serde writes
    /// each of them.
    #[test]
    fn escaping_is_decided_for_each_player_over_its_own_text() {
        let player = |name: &str, updated_by: &str| Player {
            id: uuid::Uuid::now_v7(),
            name: name.into(),
            date_of_birth: NaiveDate::from_ymd_opt(2001, 9, 5).unwrap(),
            country: "ENG".into(),
            team: "Arsenal".into(),
            position: Position::Forward,
            club_number: None,
            national_team_number: Some(7),
            version: 2,
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            updated_at: DateTime::from_timestamp_micros(1_700_000_000_123_000).unwrap(),
            created_by: "service:importer".into(),
            updated_by: updated_by.into(),
        };
        let players = [
            player("Plain", "user:a"),
            player("Quote \"Q\"", "user:a"),
            player("Plain", "user:a"),
            player("Plain", "user:tab\t"),
            player("Plain", "user:back\\slash"),
            player("Plain", "user:a"),
        ];
        let items: PlayerList = players.iter().map(Player::borrowed).collect();
        let each: Vec<String> = players
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect();
        let expected = format!("{{\"items\":[{}],\"next_cursor\":null}}", each.join(","));
        assert_eq!(String::from_utf8(page(&items, None)).unwrap(), expected);
    }
}
