//! A player: the wire shapes (`PlayerInput` in, `Player` out) and the validated `NewPlayer`
//! that storage accepts.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    Country, DateOfBirth, FieldError, PlayerName, Position, ShirtNumber, TeamName, timestamp,
};

/// The body of `POST /v1/players`, and the document a merge patch applies to.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlayerInput {
    /// 1-100 characters after trimming; no control characters.
    #[schema(min_length = 1, max_length = 100, example = "Bukayo Saka")]
    pub name: String,
    /// ISO date, not in the future, not before 1900-01-01.
    #[schema(format = Date, example = "2001-09-05")]
    pub date_of_birth: String,
    /// FIFA three-letter code (any case; stored upper case), e.g. ENG, SCO, BRA.
    #[schema(min_length = 3, max_length = 3, example = "ENG")]
    pub country: String,
    /// The club, 1-100 characters.
    #[schema(min_length = 1, max_length = 100, example = "Arsenal")]
    pub team: String,
    pub position: Position,
    /// 1-99; unique within a team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 99, example = 7)]
    pub club_number: Option<i64>,
    /// 1-99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 99)]
    pub national_team_number: Option<i64>,
}

impl PlayerInput {
    /// The members `PlayerInput` has: the fields a client sets.
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "date_of_birth",
        "country",
        "team",
        "position",
        "club_number",
        "national_team_number",
    ];

    /// The members of `map` a client may not send, whatever their value: read-only members
    /// and unknown ones (a merge patch's `{"shoe_size": null}` included).
    pub fn member_errors(map: &serde_json::Map<String, Value>) -> Vec<FieldError> {
        map.keys()
            .filter_map(|key| {
                if READ_ONLY_FIELDS.contains(&key.as_str()) {
                    Some(FieldError::new(key, "read_only", "is set by the server"))
                } else if !Self::FIELDS.contains(&key.as_str()) {
                    Some(FieldError::new(
                        key,
                        "unknown_field",
                        "is not a player field",
                    ))
                } else {
                    None
                }
            })
            .collect()
    }

    /// Reads a JSON document field by field, so each wrong member gets its own error: unknown
    /// and read-only members, missing members, and members of the wrong JSON type.
    pub fn from_json(value: &Value) -> Result<PlayerInput, Vec<FieldError>> {
        let Value::Object(map) = value else {
            return Err(vec![FieldError::new(
                "",
                "not_an_object",
                "the body must be a JSON object",
            )]);
        };
        let mut errors = Self::member_errors(map);
        let mut text = |field: &str| match map.get(field) {
            Some(Value::String(s)) => Some(s.clone()),
            None | Some(Value::Null) => {
                errors.push(FieldError::new(field, "required", "is required"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(field, "invalid_type", "must be a string"));
                None
            }
        };
        let name = text("name");
        let date_of_birth = text("date_of_birth");
        let country = text("country");
        let team = text("team");
        let position = text("position");
        let position = position.and_then(|p| {
            let parsed = Position::parse(&p);
            if parsed.is_none() {
                errors.push(FieldError::new(
                    "position",
                    "invalid_position",
                    "must be one of goalkeeper, defender, midfielder, forward",
                ));
            }
            parsed
        });
        // An integer as JSON Schema defines one: any number with a zero fractional part (`7`,
        // `7.0`, `7e0`); out-of-range values are left to the range check.
        let mut number = |field: &str| match map.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(Value::Number(n)) if n.as_u64().is_some() => Some(i64::MAX),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => n
                .as_f64()
                .map(|f| f.clamp(i64::MIN as f64, i64::MAX as f64) as i64),
            Some(_) => {
                errors.push(FieldError::new(field, "invalid_type", "must be an integer"));
                None
            }
        };
        let club_number = number("club_number");
        let national_team_number = number("national_team_number");
        match (name, date_of_birth, country, team, position) {
            (Some(name), Some(date_of_birth), Some(country), Some(team), Some(position))
                if errors.is_empty() =>
            {
                Ok(PlayerInput {
                    name,
                    date_of_birth,
                    country,
                    team,
                    position,
                    club_number,
                    national_team_number,
                })
            }
            _ => Err(errors),
        }
    }
}

/// Collects field errors while parsing, so every invalid field is reported at once.
struct Keep<'a>(&'a mut Vec<FieldError>);

impl Keep<'_> {
    fn ok<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }
}

/// A player that passed every rule; the only shape storage writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPlayer {
    name: PlayerName,
    date_of_birth: DateOfBirth,
    country: Country,
    team: TeamName,
    position: Position,
    club_number: Option<ShirtNumber>,
    national_team_number: Option<ShirtNumber>,
}

impl NewPlayer {
    /// Validates every field and reports all failures at once.
    pub fn parse(input: &PlayerInput, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut keep = Keep(&mut errors);
        let name = keep.ok(PlayerName::parse(&input.name));
        let date_of_birth = keep.ok(DateOfBirth::parse(&input.date_of_birth, today));
        let country = keep.ok(Country::parse(&input.country).ok_or_else(|| {
            FieldError::new(
                "country",
                "invalid_country",
                "must be a FIFA three-letter nation code (see the README)",
            )
        }));
        let team = keep.ok(TeamName::parse(&input.team));
        let club_number = input
            .club_number
            .map(|n| keep.ok(ShirtNumber::parse("club_number", n)));
        let national_team_number = input
            .national_team_number
            .map(|n| keep.ok(ShirtNumber::parse("national_team_number", n)));
        match (name, date_of_birth, country, team) {
            (Some(name), Some(date_of_birth), Some(country), Some(team)) if errors.is_empty() => {
                Ok(NewPlayer {
                    name,
                    date_of_birth,
                    country,
                    team,
                    position: input.position,
                    club_number: club_number.flatten(),
                    national_team_number: national_team_number.flatten(),
                })
            }
            _ => Err(errors),
        }
    }

    pub fn name(&self) -> &PlayerName {
        &self.name
    }
    pub fn date_of_birth(&self) -> NaiveDate {
        self.date_of_birth.date()
    }
    pub fn country(&self) -> Country {
        self.country
    }
    pub fn team(&self) -> &TeamName {
        &self.team
    }
    pub fn position(&self) -> Position {
        self.position
    }
    pub fn club_number(&self) -> Option<i32> {
        self.club_number.map(|n| i32::from(n.get()))
    }
    pub fn national_team_number(&self) -> Option<i32> {
        self.national_team_number.map(|n| i32::from(n.get()))
    }
}

/// A stored player, as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Player {
    /// UUID v7, assigned by the server.
    pub id: Uuid,
    pub name: String,
    #[schema(format = Date)]
    #[serde(serialize_with = "timestamp::serialize_date")]
    pub date_of_birth: NaiveDate,
    /// FIFA three-letter code, upper case.
    pub country: String,
    pub team: String,
    pub position: Position,
    #[schema(minimum = 1, maximum = 99)]
    pub club_number: Option<i32>,
    #[schema(minimum = 1, maximum = 99)]
    pub national_team_number: Option<i32>,
    /// Increments on every change; the ETag is `"<version>"`.
    pub version: i64,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub updated_at: DateTime<Utc>,
    /// The acting principal: `user:<sub>` or `service:<client id>`.
    pub created_by: String,
    pub updated_by: String,
}

impl Player {
    /// The strong ETag of this version of the player.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The patchable part of the player, as a merge patch's target document.
    pub fn to_input(&self) -> PlayerInput {
        PlayerInput {
            name: self.name.clone(),
            date_of_birth: self.date_of_birth.format("%Y-%m-%d").to_string(),
            country: self.country.clone(),
            team: self.team.clone(),
            position: self.position,
            club_number: self.club_number.map(i64::from),
            national_team_number: self.national_team_number.map(i64::from),
        }
    }
}

/// Fields of `Player` that a merge patch may not touch.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> PlayerInput {
        PlayerInput {
            name: " Kylian Mbappé ".into(),
            date_of_birth: "1998-12-20".into(),
            country: "fra".into(),
            team: "Real Madrid".into(),
            position: Position::Forward,
            club_number: Some(10),
            national_team_number: None,
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
    }

    #[test]
    fn valid_input_is_normalised() {
        let p = NewPlayer::parse(&input(), today()).unwrap();
        assert_eq!(p.name().as_str(), "Kylian Mbappé");
        assert_eq!(p.country().code(), "FRA");
        assert_eq!(p.club_number(), Some(10));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let mut bad = input();
        bad.name = "".into();
        bad.country = "XYZ".into();
        bad.club_number = Some(0);
        bad.national_team_number = Some(100);
        bad.date_of_birth = "3000-01-01".into();
        let errors = NewPlayer::parse(&bad, today()).unwrap_err();
        let mut fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "club_number",
                "country",
                "date_of_birth",
                "name",
                "national_team_number"
            ]
        );
    }

    #[test]
    fn from_json_reports_each_wrong_member() {
        let doc = serde_json::json!({
            "name": 7, "country": "ENG", "team": "T", "position": "striker",
            "club_number": 1.5, "id": "x", "shoe_size": 44
        });
        let errors = PlayerInput::from_json(&doc).unwrap_err();
        let mut got: Vec<_> = errors
            .iter()
            .map(|e| (e.field.as_str(), e.code.as_str()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("club_number", "invalid_type"),
                ("date_of_birth", "required"),
                ("id", "read_only"),
                ("name", "invalid_type"),
                ("position", "invalid_position"),
                ("shoe_size", "unknown_field"),
            ]
        );
        assert_eq!(
            PlayerInput::from_json(&serde_json::json!([1])).unwrap_err()[0].code,
            "not_an_object"
        );
    }

    #[test]
    fn fields_are_the_members_of_the_wire_type() {
        let mut full = input();
        full.national_team_number = Some(9);
        let serde_json::Value::Object(members) = serde_json::to_value(&full).unwrap() else {
            panic!("an input serialises to an object");
        };
        let mut members: Vec<_> = members.keys().map(String::as_str).collect();
        let mut fields = PlayerInput::FIELDS.to_vec();
        members.sort();
        fields.sort();
        assert_eq!(members, fields);
    }

    #[test]
    fn unknown_fields_are_rejected_by_the_wire_type() {
        let err = serde_json::from_str::<PlayerInput>(
            r#"{"name":"a","date_of_birth":"2000-01-01","country":"ENG","team":"t","position":"defender","shoe_size":44}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
