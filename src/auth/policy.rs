//! Groups (browser users) and scopes (services) → permissions.
//!
//! Defaults: groups `players-admin` → all four permissions, `players-editor` →
//! read, write, delete, `players-viewer` → read; scopes under the resource-server prefix
//! `players`: `players/read`, `players/write`, `players/delete`, `players/admin` → the
//! permission of the same name (`admin` for `/admin`).
//!
//! Override format for `AUTH_GROUP_PERMISSIONS` and `AUTH_SCOPE_PERMISSIONS`: entries separated
//! by `;`, each `NAME=PERM[,PERM...]`, e.g.
//! `AUTH_GROUP_PERMISSIONS="coaches=players:read,players:write;ops=admin,players:read"`.
//! Scope names are given without the prefix (`read=players:read`); the prefix comes from
//! `AUTH_SCOPE_PREFIX`. An override replaces the whole default table.

use std::collections::HashMap;

use super::{Permission, PermissionSet};

#[derive(Clone, Debug)]
pub struct PermissionPolicy {
    groups: HashMap<String, PermissionSet>,
    /// Full scope (`prefix/name`) → permissions.
    scopes: HashMap<String, PermissionSet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid permission mapping entry {entry:?}: {why} (format NAME=PERM[,PERM];NAME=...; permissions: players:read, players:write, players:delete, admin)"
)]
pub struct MappingError {
    pub entry: String,
    pub why: &'static str,
}

pub const DEFAULT_GROUP_PERMISSIONS: &str = "players-admin=players:read,players:write,players:delete,admin;\
players-editor=players:read,players:write,players:delete;players-viewer=players:read";
pub const DEFAULT_SCOPE_PERMISSIONS: &str =
    "read=players:read;write=players:write;delete=players:delete;admin=admin";

/// Parses `NAME=PERM,PERM;NAME=PERM`.
pub fn parse_mapping(spec: &str) -> Result<HashMap<String, PermissionSet>, MappingError> {
    let mut map = HashMap::new();
    for entry in spec.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let err = |why| MappingError {
            entry: entry.to_owned(),
            why,
        };
        let (name, perms) = entry.split_once('=').ok_or_else(|| err("missing '='"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(err("empty name"));
        }
        let mut set = PermissionSet::empty();
        for p in perms.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            set.insert(Permission::parse(p).ok_or_else(|| err("unknown permission"))?);
        }
        map.insert(name.to_owned(), set);
    }
    Ok(map)
}

impl PermissionPolicy {
    pub fn new(
        group_spec: Option<&str>,
        scope_prefix: &str,
        scope_spec: Option<&str>,
    ) -> Result<Self, MappingError> {
        let groups = parse_mapping(group_spec.unwrap_or(DEFAULT_GROUP_PERMISSIONS))?;
        let prefix = scope_prefix.trim_end_matches('/');
        let scopes = parse_mapping(scope_spec.unwrap_or(DEFAULT_SCOPE_PERMISSIONS))?
            .into_iter()
            .map(|(name, set)| {
                let full = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                (full, set)
            })
            .collect();
        Ok(PermissionPolicy { groups, scopes })
    }

    pub fn for_groups(&self, groups: &[String]) -> PermissionSet {
        let mut set = PermissionSet::empty();
        for g in groups {
            if let Some(p) = self.groups.get(g) {
                set.extend(p.iter());
            }
        }
        set
    }

    pub fn for_scopes(&self, scopes: &[String]) -> PermissionSet {
        let mut set = PermissionSet::empty();
        for s in scopes {
            if let Some(p) = self.scopes.get(s) {
                set.extend(p.iter());
            }
        }
        set
    }
}

impl Default for PermissionPolicy {
    fn default() -> Self {
        // The built-in tables parse; a test pins this.
        PermissionPolicy::new(None, "players", None).unwrap_or(PermissionPolicy {
            groups: HashMap::new(),
            scopes: HashMap::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let p = PermissionPolicy::new(None, "players", None).unwrap();
        let admin = p.for_groups(&["players-admin".into()]);
        assert_eq!(admin, PermissionSet::all());
        let editor = p.for_groups(&["players-editor".into()]);
        assert!(editor.contains(Permission::PlayersDelete) && !editor.contains(Permission::Admin));
        let viewer = p.for_groups(&["players-viewer".into(), "unknown".into()]);
        assert_eq!(
            viewer.iter().collect::<Vec<_>>(),
            vec![Permission::PlayersRead]
        );
        assert_eq!(
            p.for_scopes(&["players/admin".into()])
                .iter()
                .collect::<Vec<_>>(),
            vec![Permission::Admin]
        );
        assert_eq!(p.for_scopes(&["read".into()]), PermissionSet::empty());
    }

    #[test]
    fn overrides_and_prefix() {
        let p = PermissionPolicy::new(
            Some("coaches=players:read,players:write"),
            "api.example",
            Some("r=players:read"),
        )
        .unwrap();
        assert!(
            p.for_groups(&["coaches".into()])
                .contains(Permission::PlayersWrite)
        );
        assert!(
            p.for_groups(&["players-admin".into()])
                .iter()
                .next()
                .is_none()
        );
        assert!(
            p.for_scopes(&["api.example/r".into()])
                .contains(Permission::PlayersRead)
        );
        assert!(PermissionPolicy::new(Some("x=players:fly"), "p", None).is_err());
        assert!(PermissionPolicy::new(Some("novalue"), "p", None).is_err());
    }
}
