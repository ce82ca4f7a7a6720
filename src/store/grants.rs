//! The runtime database role: created if missing and granted exactly the DML the service
//! needs, run by `players-api migrate` as the owner after the migrations.
//!
//! Two roles use the database. The owner (on RDS the master user) owns the schema and runs
//! the migrations; the runtime role (`players_app`) may only read and write rows. Its secret is
//! rotated with Secrets Manager's alternating-users strategy: the PostgreSQL multi-user rotation
//! function creates `players_app_clone` on its first run with
//! `CREATE ROLE players_app_clone WITH LOGIN PASSWORD ...; GRANT players_app TO players_app_clone`
//! and from then on alternates the secret between the two users. The clone therefore inherits
//! whatever `players_app` is granted, so the grants here go to `players_app` only.
//!
//! Idempotent: every run converges on the same privileges (everything on the tables is revoked
//! and the list below granted again, in one transaction under an advisory lock), so running it
//! twice, or concurrently, leaves the same result. The role's password is set only when the
//! role is created; after that the rotation owns it.

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use sqlx::{PgPool, Row};

/// What the runtime role may do on each table. Every table the migrations create must be
/// listed (an unlisted table fails the grants step, so a new migration decides explicitly).
/// The audit trail is append-only for the service: no update, no delete.
pub const TABLE_GRANTS: &[(&str, &[&str])] = &[
    ("players", &["select", "insert", "update", "delete"]),
    (
        "idempotency_keys",
        &["select", "insert", "update", "delete"],
    ),
    ("audit_log", &["select", "insert"]),
];

/// Tables that belong to the owner alone.
const OWNER_ONLY_TABLES: &[&str] = &["_sqlx_migrations"];

/// The suffix the alternating-users rotation appends to the user it clones.
pub const CLONE_SUFFIX: &str = "_clone";

/// Arbitrary key of the advisory lock that serialises concurrent runs.
const LOCK_KEY: i64 = 0x706c_6179_6772_6e74; // "playgrnt"

/// The runtime role a secret's username belongs to: `players_app_clone` → `players_app`.
pub fn base_role(username: &str) -> &str {
    username.strip_suffix(CLONE_SUFFIX).unwrap_or(username)
}

/// PostgreSQL role names this step accepts: lower case, digits and `_`, and room for the
/// rotation's `_clone` suffix within the 63-byte limit.
fn check_role_name(role: &str) -> anyhow::Result<()> {
    let ok = !role.is_empty()
        && role.len() + CLONE_SUFFIX.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !role.starts_with("pg_");
    if !ok {
        bail!(
            "runtime role name {role:?} must match [a-z_][a-z0-9_]* and be at most {} characters (not pg_*)",
            63 - CLONE_SUFFIX.len()
        );
    }
    Ok(())
}

/// What [`ensure_runtime_role`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantsReport {
    pub role: String,
    /// The role did not exist and was created.
    pub created: bool,
    /// `<role>_clone` exists (the rotation ran at least once) and is a member of the role.
    pub clone_present: bool,
}

/// Creates the runtime role if missing (LOGIN, with `initial_password` if given) and grants it
/// exactly [`TABLE_GRANTS`] plus CONNECT on the database and USAGE on `public`. Run as the
/// owner of the tables, after the migrations.
pub async fn ensure_runtime_role(
    pool: &PgPool,
    role: &str,
    initial_password: Option<&SecretString>,
) -> anyhow::Result<GrantsReport> {
    check_role_name(role)?;
    let mut tx = pool
        .begin()
        .await
        .context("grants: starting a transaction")?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(LOCK_KEY)
        .execute(&mut *tx)
        .await
        .context("grants: taking the advisory lock")?;

    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(role)
            .fetch_one(&mut *tx)
            .await
            .context("grants: looking up the runtime role")?;
    if !exists {
        // The password travels as a bind parameter into a transaction-local setting, so it is
        // in no statement text (neither the client's statement log nor the server's).
        let password = initial_password.map(|p| p.expose_secret().to_owned());
        sqlx::query("select set_config('players.grants_role', $1, true), set_config('players.grants_pw', $2, true)")
            .bind(role)
            .bind(password.unwrap_or_default())
            .execute(&mut *tx)
            .await
            .context("grants: preparing the role creation")?;
        sqlx::raw_sql(
            "do $$ begin \
               if current_setting('players.grants_pw') = '' then \
                 execute format('create role %I login', current_setting('players.grants_role')); \
               else \
                 execute format('create role %I login password %L', \
                   current_setting('players.grants_role'), current_setting('players.grants_pw')); \
               end if; \
             end $$",
        )
        .execute(&mut *tx)
        .await
        .with_context(|| format!("grants: creating role {role} (the owner needs CREATEROLE)"))?;
        sqlx::query("select set_config('players.grants_pw', '', true)")
            .execute(&mut *tx)
            .await
            .context("grants: clearing the password setting")?;
    }

    // Every table of the schema must be accounted for.
    let tables: Vec<String> = sqlx::query(
        "select tablename from pg_tables where schemaname = 'public' order by tablename",
    )
    .fetch_all(&mut *tx)
    .await
    .context("grants: listing the tables")?
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let unlisted: Vec<&String> = tables
        .iter()
        .filter(|t| {
            !TABLE_GRANTS.iter().any(|(name, _)| *name == t.as_str())
                && !OWNER_ONLY_TABLES.contains(&t.as_str())
        })
        .collect();
    if !unlisted.is_empty() {
        bail!(
            "grants: tables {unlisted:?} have no entry in store::grants::TABLE_GRANTS; decide what the runtime role may do on them"
        );
    }

    let r = quote_ident(role);
    let mut statements = vec![
        // CONNECT on this database (whatever its name), USAGE but never CREATE on public.
        format!(
            "do $$ begin execute format('grant connect on database %I to {}', current_database()); end $$",
            r.replace('\'', "''")
        ),
        format!("grant usage on schema public to {r}"),
        format!("revoke create on schema public from {r}"),
        format!("revoke all on all tables in schema public from {r}"),
        format!("revoke all on all sequences in schema public from {r}"),
    ];
    for (table, privileges) in TABLE_GRANTS {
        if tables.iter().any(|t| t.as_str() == *table) {
            statements.push(format!(
                "grant {} on table {} to {r}",
                privileges.join(", "),
                quote_ident(table)
            ));
        }
    }
    let clone = format!("{role}{CLONE_SUFFIX}");
    let clone_present: bool =
        sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
            .bind(&clone)
            .fetch_one(&mut *tx)
            .await
            .context("grants: looking up the clone")?;
    if clone_present {
        // The rotation function grants this when it creates the clone; granting it again is a
        // no-op, and repairs a clone created by hand.
        statements.push(format!("grant {r} to {}", quote_ident(&clone)));
    }
    for statement in &statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("grants: {statement}"))?;
    }
    tx.commit().await.context("grants: committing")?;
    Ok(GrantsReport {
        role: role.to_owned(),
        created: !exists,
        clone_present,
    })
}

/// `"name"` with embedded quotes doubled (names are also checked by [`check_role_name`]).
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_maps_to_its_base_role() {
        assert_eq!(base_role("players_app_clone"), "players_app");
        assert_eq!(base_role("players_app"), "players_app");
    }

    #[test]
    fn role_names_are_checked() {
        assert!(check_role_name("players_app").is_ok());
        for bad in ["", "Players", "a;drop", "pg_x", "1a", &"a".repeat(58)] {
            assert!(check_role_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_role_name(&"a".repeat(57)).is_ok());
    }
}
