//! Players read in bulk, as a page of a listing holds them: the text of all of them in one
//! buffer, instead of five strings each.
//!
//! A page of 50 `Player`s is 250 strings, each allocated when its row is decoded and freed once
//! the page's JSON is written: a fifth of the instructions the server spent on a page
//! (docs/benchmarks.md). A `PlayerList` makes two allocations, whatever its length.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::{Player, Position, player_json};

/// A player whose text is borrowed: what a row decodes to, and what a page's JSON is written
/// from. The same members as `Player`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayerRef<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub date_of_birth: NaiveDate,
    pub country: &'a str,
    pub team: &'a str,
    pub position: Position,
    pub club_number: Option<i32>,
    pub national_team_number: Option<i32>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: &'a str,
    pub updated_by: &'a str,
}

impl PlayerRef<'_> {
    pub fn to_player(&self) -> Player {
        Player {
            id: self.id,
            name: self.name.to_owned(),
            date_of_birth: self.date_of_birth,
            country: self.country.to_owned(),
            team: self.team.to_owned(),
            position: self.position,
            club_number: self.club_number,
            national_team_number: self.national_team_number,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: self.created_by.to_owned(),
            updated_by: self.updated_by.to_owned(),
        }
    }
}

impl Player {
    pub fn borrowed(&self) -> PlayerRef<'_> {
        PlayerRef {
            id: self.id,
            name: &self.name,
            date_of_birth: self.date_of_birth,
            country: &self.country,
            team: &self.team,
            position: self.position,
            club_number: self.club_number,
            national_team_number: self.national_team_number,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            created_by: &self.created_by,
            updated_by: &self.updated_by,
        }
    }
}

/// Players in order, their text in one buffer.
#[derive(Clone, Default)]
pub struct PlayerList {
    /// Every player's name, country, team, created_by and updated_by, one after the other.
    text: String,
    players: Vec<Entry>,
}

/// A player's members that are not text, and where its text ends in `PlayerList::text`.
#[derive(Clone)]
struct Entry {
    id: Uuid,
    date_of_birth: NaiveDate,
    position: Position,
    club_number: Option<i32>,
    national_team_number: Option<i32>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The ends of name, country, team, created_by and updated_by; each starts where the one
    /// before it ends, the first where the previous player's last ends.
    ends: [usize; 5],
    /// Whether any of that text has a byte JSON escapes: checked once, over the five together,
    /// instead of string by string as the page is written.
    needs_escaping: bool,
}

/// About the text of one player (a Cognito user's actor alone is 41 bytes, twice), so that a
/// page's buffer seldom grows.
const TEXT_PER_PLAYER: usize = 128;

impl PlayerList {
    pub fn with_capacity(players: usize) -> Self {
        PlayerList {
            text: String::with_capacity(players * TEXT_PER_PLAYER),
            players: Vec::with_capacity(players),
        }
    }

    pub fn push(&mut self, p: PlayerRef<'_>) {
        let start = self.text.len();
        let mut ends = [0; 5];
        for (end, s) in ends
            .iter_mut()
            .zip([p.name, p.country, p.team, p.created_by, p.updated_by])
        {
            self.text.push_str(s);
            *end = self.text.len();
        }
        self.players.push(Entry {
            id: p.id,
            date_of_birth: p.date_of_birth,
            position: p.position,
            club_number: p.club_number,
            national_team_number: p.national_team_number,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
            ends,
            needs_escaping: player_json::needs_escaping(&self.text.as_bytes()[start..]),
        });
    }

    pub fn len(&self) -> usize {
        self.players.len()
    }

    pub fn is_empty(&self) -> bool {
        self.players.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<PlayerRef<'_>> {
        let entry = self.players.get(index)?;
        let start = match index {
            0 => 0,
            _ => self.players[index - 1].ends[4],
        };
        Some(self.player(start, entry))
    }

    /// The player of `entry`, whose text starts at `start`.
    fn player<'a>(&'a self, start: usize, entry: &Entry) -> PlayerRef<'a> {
        let [name, country, team, created_by, updated_by] = entry.ends;
        let t = &self.text;
        PlayerRef {
            id: entry.id,
            name: &t[start..name],
            date_of_birth: entry.date_of_birth,
            country: &t[name..country],
            team: &t[country..team],
            position: entry.position,
            club_number: entry.club_number,
            national_team_number: entry.national_team_number,
            version: entry.version,
            created_at: entry.created_at,
            updated_at: entry.updated_at,
            created_by: &t[team..created_by],
            updated_by: &t[created_by..updated_by],
        }
    }

    pub fn last(&self) -> Option<PlayerRef<'_>> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    /// Keeps the first `len` players.
    pub fn truncate(&mut self, len: usize) {
        self.players.truncate(len);
        let end = self.players.last().map_or(0, |p| p.ends[4]);
        self.text.truncate(end);
    }

    pub fn iter(&self) -> impl Iterator<Item = PlayerRef<'_>> {
        self.iter_escaping().map(|(p, _)| p)
    }

    /// Each player, and whether any of its text needs escaping in JSON.
    pub(super) fn iter_escaping(&self) -> impl Iterator<Item = (PlayerRef<'_>, bool)> {
        let starts = std::iter::once(0).chain(self.players.iter().map(|p| p.ends[4]));
        self.players
            .iter()
            .zip(starts)
            .map(|(entry, start)| (self.player(start, entry), entry.needs_escaping))
    }

    pub fn to_vec(&self) -> Vec<Player> {
        self.iter().map(|p| p.to_player()).collect()
    }
}

impl std::fmt::Debug for PlayerList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> FromIterator<PlayerRef<'a>> for PlayerList {
    fn from_iter<I: IntoIterator<Item = PlayerRef<'a>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut list = PlayerList::with_capacity(iter.size_hint().0);
        iter.for_each(|p| list.push(p));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(name: &str, team: &str, actor: &str) -> Player {
        Player {
            id: Uuid::now_v7(),
            name: name.into(),
            date_of_birth: NaiveDate::from_ymd_opt(2001, 9, 5).unwrap(),
            country: "ENG".into(),
            team: team.into(),
            position: Position::Forward,
            club_number: Some(7),
            national_team_number: None,
            version: 3,
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            updated_at: DateTime::from_timestamp_micros(1_700_000_100_000_001).unwrap(),
            created_by: actor.into(),
            updated_by: format!("{actor}-2"),
        }
    }

    /// Each player comes back as it went in, empty and multi-byte text included, and
    /// truncating keeps the first ones whole.
    #[test]
    fn players_come_back_as_they_were_pushed() {
        let players = vec![
            player(
                "Bukayo Saka",
                "Arsenal",
                "user:2b1a6f0e-3c3a-4b7e-9a3c-1d2e3f4a5b6c",
            ),
            player("Kylian Mbappé", "", "service:importer"),
            player("Émile Smith Rowe", "Crystal Palace", "user:é"),
        ];
        let mut list: PlayerList = players.iter().map(Player::borrowed).collect();
        assert_eq!(list.len(), 3);
        assert_eq!(list.to_vec(), players);
        assert_eq!(list.last().map(|p| p.to_player()), Some(players[2].clone()));
        assert_eq!(list.get(3), None);

        list.truncate(2);
        assert_eq!(list.to_vec(), players[..2]);
        list.push(players[2].borrowed());
        assert_eq!(list.to_vec(), players);

        list.truncate(0);
        assert!(list.is_empty());
        assert_eq!(list.last(), None);
    }
}
