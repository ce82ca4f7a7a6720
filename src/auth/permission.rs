//! The permissions a route can require, and sets of them.

use std::fmt;

use serde::{Serialize, Serializer};

/// A named right to do something. The wire form (`players:read`, ...) is part of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    PlayersRead,
    PlayersWrite,
    PlayersDelete,
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::PlayersRead,
        Permission::PlayersWrite,
        Permission::PlayersDelete,
        Permission::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::PlayersRead => "players:read",
            Permission::PlayersWrite => "players:write",
            Permission::PlayersDelete => "players:delete",
            Permission::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Permission> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A small set of permissions (a bit set: checks happen on every request).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u8);

impl PermissionSet {
    pub const fn empty() -> Self {
        PermissionSet(0)
    }

    pub fn all() -> Self {
        Permission::ALL.into_iter().collect()
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    pub fn contains(&self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn iter(&self) -> impl Iterator<Item = Permission> + '_ {
        Permission::ALL.into_iter().filter(|p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::empty();
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl Extend<Permission> for PermissionSet {
    fn extend<I: IntoIterator<Item = Permission>>(&mut self, iter: I) {
        for p in iter {
            self.insert(p);
        }
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(p));
        }
        assert_eq!(Permission::parse("players:READ"), None);
    }

    #[test]
    fn set_holds_exactly_what_was_inserted() {
        let set: PermissionSet = [Permission::PlayersRead, Permission::Admin]
            .into_iter()
            .collect();
        assert!(set.contains(Permission::PlayersRead));
        assert!(set.contains(Permission::Admin));
        assert!(!set.contains(Permission::PlayersWrite));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Permission::PlayersRead, Permission::Admin]
        );
    }
}
