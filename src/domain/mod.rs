//! The player domain: validated values and the shapes the API exchanges.

mod country;
mod fields;
mod player;

pub use country::{Country, NATIONS};
pub use fields::{DateOfBirth, PlayerName, Position, ShirtNumber, TeamName};
pub use player::{NewPlayer, Player, PlayerInput, READ_ONLY_FIELDS};
