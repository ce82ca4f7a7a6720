//! The player domain: validated values and the shapes the API exchanges.

mod actor;
mod country;
mod field_error;
mod fields;
mod player;
pub mod player_json;
mod player_list;
pub(crate) mod timestamp;

pub use actor::{Actor, ActorKind};
pub use country::{Country, NATIONS};
pub use field_error::FieldError;
pub use fields::{DateOfBirth, PlayerName, Position, ShirtNumber, TeamName, trimmed_text_pattern};
pub use player::{NewPlayer, Player, PlayerInput, READ_ONLY_FIELDS};
pub use player_list::{PlayerList, PlayerRef};
