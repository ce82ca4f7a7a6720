//! The validated parts of a player. Each type can only be built by its `parse`, so a value of
//! the type is valid by construction ("parse, don't validate").

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use utoipa::ToSchema;

use super::FieldError;

/// Characters a name may not contain: control characters, and format characters (Unicode
/// category Cf: bidi overrides and isolates, zero-width spaces and joiners, soft hyphens), which
/// make two different values look the same or reorder what is displayed.
fn forbidden(c: char) -> bool {
    c.is_control() || c.general_category() == GeneralCategory::Format
}

/// A trimmed text of 1..=`max` characters with no `forbidden` character.
fn bounded_text(field: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(field, "empty", "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "control_character",
            "must not contain control characters",
        ));
    }
    if trimmed.chars().any(forbidden) {
        return Err(FieldError::new(
            field,
            "format_character",
            "must not contain invisible format characters (bidi controls, zero-width spaces)",
        ));
    }
    Ok(trimmed.to_owned())
}

/// The JSON Schema `pattern` (ECMA-262 and Python `re` alike) that a raw value matches exactly
/// when it trims to 1..=`max` characters, with no `forbidden` character in what is left when
/// `forbid` is set: white space, then a first and (for two or more) a last character that are
/// neither white space nor forbidden, with allowed characters between. The classes are derived
/// from the same predicates the parser uses, so the document cannot drift from the rule.
pub fn trimmed_text_pattern(max: usize, forbid: bool) -> String {
    let space = char_class(char::is_whitespace);
    let edge = if forbid {
        format!("[^{}]", class_body(|c| c.is_whitespace() || forbidden(c)))
    } else {
        format!("[^{}]", class_body(char::is_whitespace))
    };
    let inner = if forbid {
        format!("[^{}]", class_body(forbidden))
    } else {
        r"[\s\S]".to_owned()
    };
    let between = max.saturating_sub(2);
    format!("^{space}*(?:{edge}(?:{inner}{{0,{between}}}{edge})?){space}*$")
}

/// A character class of every character `member` holds for.
fn char_class(member: impl Fn(char) -> bool) -> String {
    format!("[{}]", class_body(member))
}

/// The inside of a character class: `member`'s characters as ranges, BMP characters as
/// `\uXXXX` escapes (outside the BMP as the characters themselves, which both dialects read).
fn class_body(member: impl Fn(char) -> bool) -> String {
    let mut body = String::new();
    let mut run: Option<(char, char)> = None;
    let flush = |run: (char, char), body: &mut String| {
        let esc = |c: char| match u32::from(c) {
            n if n <= 0xFFFF => format!("\\u{n:04X}"),
            _ => c.to_string(),
        };
        body.push_str(&esc(run.0));
        if run.1 != run.0 {
            body.push('-');
            body.push_str(&esc(run.1));
        }
    };
    for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
        match (member(c), run) {
            (true, Some((start, end))) if u32::from(end) + 1 == u32::from(c) => {
                run = Some((start, c))
            }
            (true, Some(done)) => {
                flush(done, &mut body);
                run = Some((c, c));
            }
            (true, None) => run = Some((c, c)),
            (false, Some(done)) => {
                flush(done, &mut body);
                run = None;
            }
            (false, None) => {}
        }
    }
    if let Some(done) = run {
        flush(done, &mut body);
    }
    body
}

/// A player's name: 1-100 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerName(String);

impl PlayerName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        bounded_text("name", raw, Self::MAX_CHARS).map(PlayerName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form the case-insensitive name filter searches (Unicode lower case, computed here
    /// so both databases fold the same way).
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A club name: 1-100 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamName(String);

impl TeamName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        bounded_text("team", raw, Self::MAX_CHARS).map(TeamName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A date of birth between 1900-01-01 and today (UTC), inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    pub fn earliest() -> NaiveDate {
        NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Dates the parser reads: four-digit year from 1900 on, two-digit month and day (the
    /// calendar and "not in the future" are checked after matching).
    pub const PATTERN: &str = "^(?:19|[2-9][0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}$";

    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, FieldError> {
        // chrono alone would also take `2001-9-5` or `+2001-09-05`; the wire form is exact.
        let shaped = raw.len() == 10
            && raw.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let date = Some(raw)
            .filter(|_| shaped)
            .and_then(|r| NaiveDate::parse_from_str(r, "%Y-%m-%d").ok())
            .ok_or_else(|| {
                FieldError::new(
                    "date_of_birth",
                    "invalid_date",
                    "must be an ISO date (YYYY-MM-DD)",
                )
            })?;
        Self::new(date, today)
    }

    pub fn new(date: NaiveDate, today: NaiveDate) -> Result<Self, FieldError> {
        if date > today {
            return Err(FieldError::new(
                "date_of_birth",
                "in_future",
                "must not be in the future",
            ));
        }
        if date < Self::earliest() {
            return Err(FieldError::new(
                "date_of_birth",
                "too_early",
                "must not be before 1900-01-01",
            ));
        }
        Ok(DateOfBirth(date))
    }

    pub fn date(&self) -> NaiveDate {
        self.0
    }
}

/// Where a player plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Goalkeeper,
    Defender,
    Midfielder,
    Forward,
}

impl Position {
    pub const ALL: [Position; 4] = [
        Position::Goalkeeper,
        Position::Defender,
        Position::Midfielder,
        Position::Forward,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Position::Goalkeeper => "goalkeeper",
            Position::Defender => "defender",
            Position::Midfielder => "midfielder",
            Position::Forward => "forward",
        }
    }

    pub fn parse(s: &str) -> Option<Position> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// A shirt number, 1-99.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShirtNumber(u8);

impl ShirtNumber {
    pub fn parse(field: &str, n: i64) -> Result<Self, FieldError> {
        match u8::try_from(n) {
            Ok(v @ 1..=99) => Ok(ShirtNumber(v)),
            _ => Err(FieldError::new(
                field,
                "out_of_range",
                "must be between 1 and 99",
            )),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            PlayerName::parse("  Bukayo Saka ").unwrap().as_str(),
            "Bukayo Saka"
        );
        assert_eq!(PlayerName::parse("   ").unwrap_err().code, "empty");
        assert!(
            PlayerName::parse(&"é".repeat(100)).is_ok(),
            "100 chars, not bytes"
        );
        assert_eq!(
            PlayerName::parse(&"a".repeat(101)).unwrap_err().code,
            "too_long"
        );
        assert_eq!(
            PlayerName::parse("a\u{0}b").unwrap_err().code,
            "control_character"
        );
        assert_eq!(
            PlayerName::parse("a\nb").unwrap_err().code,
            "control_character"
        );
        // Bidi override, bidi isolate, zero-width space, word joiner, BOM, soft hyphen.
        for c in [
            '\u{202E}', '\u{2066}', '\u{200B}', '\u{2060}', '\u{FEFF}', '\u{AD}',
        ] {
            let name = format!("Ada{c}Hegerberg");
            assert_eq!(
                PlayerName::parse(&name).unwrap_err().code,
                "format_character",
                "{c:?}"
            );
            assert_eq!(
                TeamName::parse(&name).unwrap_err().code,
                "format_character",
                "{c:?}"
            );
        }
        // Letters and marks of any script stay valid.
        assert!(PlayerName::parse("Søren Kierkegård-Ødegaard").is_ok());
        assert!(PlayerName::parse("Nguyễn Công Phượng").is_ok());
    }

    #[test]
    fn folded_name_is_unicode_lower_case() {
        assert_eq!(
            PlayerName::parse("ÉDER Militão").unwrap().folded(),
            "éder militão"
        );
    }

    #[test]
    fn team_has_the_same_rules_with_its_own_field_name() {
        let e = TeamName::parse("").unwrap_err();
        assert_eq!((e.field.as_str(), e.code.as_str()), ("team", "empty"));
    }

    #[test]
    fn date_of_birth_bounds() {
        assert!(DateOfBirth::parse("1900-01-01", today()).is_ok());
        assert_eq!(
            DateOfBirth::parse("1899-12-31", today()).unwrap_err().code,
            "too_early"
        );
        assert!(DateOfBirth::parse("2026-11-21", today()).is_ok());
        assert_eq!(
            DateOfBirth::parse("2026-11-22", today()).unwrap_err().code,
            "in_future"
        );
        assert_eq!(
            DateOfBirth::parse("21/11/2000", today()).unwrap_err().code,
            "invalid_date"
        );
        assert_eq!(
            DateOfBirth::parse("2000-02-30", today()).unwrap_err().code,
            "invalid_date"
        );
    }

    #[test]
    fn shirt_numbers_are_1_to_99() {
        assert!(ShirtNumber::parse("club_number", 1).is_ok());
        assert!(ShirtNumber::parse("club_number", 99).is_ok());
        for bad in [0, 100, -1, 256, i64::MAX] {
            assert_eq!(
                ShirtNumber::parse("club_number", bad).unwrap_err().code,
                "out_of_range"
            );
        }
    }
}
