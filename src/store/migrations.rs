//! The migrations, embedded in the binary. Append-only: add a file to both folders and a line
//! to each list (see migrations/README.md).

use std::borrow::Cow;

use sqlx::{
    AssertSqlSafe, SqlSafeStr,
    migrate::{Migration, MigrationType, Migrator},
};

type Embedded = (i64, &'static str, &'static str);

const POSTGRES: &[Embedded] = &[
    (
        1,
        "players",
        include_str!("../../migrations/postgres/0001_players.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../../migrations/postgres/0002_audit.sql"),
    ),
    (
        3,
        "audit client request id",
        include_str!("../../migrations/postgres/0003_audit_client_request_id.sql"),
    ),
];

const SQLITE: &[Embedded] = &[
    (
        1,
        "players",
        include_str!("../../migrations/sqlite/0001_players.sql"),
    ),
    (
        2,
        "audit",
        include_str!("../../migrations/sqlite/0002_audit.sql"),
    ),
    (
        3,
        "audit client request id",
        include_str!("../../migrations/sqlite/0003_audit_client_request_id.sql"),
    ),
];

fn migrator(list: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    AssertSqlSafe(sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}

pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}
