//! The PostgreSQL and SQLite migrations must describe the same logical schema: the same
//! tables and columns with the same nullability, the same primary and unique keys, the same
//! columns under CHECK constraints, and the same indexes.

use std::collections::BTreeSet;

use crate::support::db::{Backend, TestDb};
use sqlx::Row;

const TABLES: &[&str] = &["players", "idempotency_keys", "audit_log"];

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    /// (table, column, not null)
    columns: BTreeSet<(String, String, bool)>,
    /// (table, "primary" | "unique", columns)
    keys: BTreeSet<(String, &'static str, Vec<String>)>,
    /// (table, column) with a CHECK constraint
    checks: BTreeSet<(String, String)>,
    /// (table, index name)
    indexes: BTreeSet<(String, String)>,
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let mut s = Schema::default();
    for table in TABLES {
        for row in sqlx::query(
            "select column_name::text as c, is_nullable::text as n from information_schema.columns \
             where table_schema = 'public' and table_name = $1",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap()
        {
            s.columns.insert((
                table.to_string(),
                row.get("c"),
                row.get::<String, _>("n") == "NO",
            ));
        }
        for row in sqlx::query(
            "select c.contype::text as kind, \
                    array(select a.attname::text from unnest(c.conkey) with ordinality k(n, ord) \
                          join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n \
                          order by k.ord) as cols \
             from pg_constraint c where c.conrelid = $1::regclass",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap()
        {
            let cols: Vec<String> = row.get("cols");
            match row.get::<String, _>("kind").as_str() {
                "p" => {
                    s.keys.insert((table.to_string(), "primary", cols));
                }
                "u" => {
                    s.keys.insert((table.to_string(), "unique", cols));
                }
                "c" => {
                    for c in cols {
                        s.checks.insert((table.to_string(), c));
                    }
                }
                _ => {}
            }
        }
        for row in sqlx::query(
            "select i.relname::text as name from pg_index x join pg_class i on i.oid = x.indexrelid \
             where x.indrelid = $1::regclass and not x.indisunique",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .unwrap()
        {
            s.indexes.insert((table.to_string(), row.get("name")));
        }
    }
    pool.close().await;
    s
}

async fn sqlite_schema(url: &str) -> Schema {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let mut s = Schema::default();
    for table in TABLES {
        let mut pk = Vec::new();
        for row in
            sqlx::query("select name, \"notnull\" as nn, pk from pragma_table_info(?1) order by pk")
                .bind(table)
                .fetch_all(&pool)
                .await
                .unwrap()
        {
            let name: String = row.get("name");
            s.columns.insert((
                table.to_string(),
                name.clone(),
                row.get::<i64, _>("nn") == 1,
            ));
            if row.get::<i64, _>("pk") > 0 {
                pk.push(name);
            }
        }
        s.keys.insert((table.to_string(), "primary", pk));
        for row in sqlx::query("select name, origin, \"unique\" as u from pragma_index_list(?1)")
            .bind(table)
            .fetch_all(&pool)
            .await
            .unwrap()
        {
            let name: String = row.get("name");
            let origin: String = row.get("origin");
            if origin == "u" {
                let cols: Vec<String> =
                    sqlx::query("select name from pragma_index_info(?1) order by seqno")
                        .bind(&name)
                        .fetch_all(&pool)
                        .await
                        .unwrap()
                        .iter()
                        .map(|r| r.get("name"))
                        .collect();
                s.keys.insert((table.to_string(), "unique", cols));
            } else if origin == "c" && row.get::<i64, _>("u") == 0 {
                s.indexes.insert((table.to_string(), name));
            }
        }
        // SQLite keeps CHECKs only in the table's SQL: one column definition per line.
        let sql: String =
            sqlx::query("select sql from sqlite_master where type = 'table' and name = ?1")
                .bind(table)
                .fetch_one(&pool)
                .await
                .unwrap()
                .get("sql");
        for line in sql.lines().map(str::trim) {
            if line.contains("check (")
                && let Some(column) = line.split_whitespace().next()
            {
                s.checks.insert((table.to_string(), column.to_owned()));
            }
        }
    }
    pool.close().await;
    s
}

#[tokio::test]
async fn postgres_and_sqlite_schemas_match() {
    let pg = TestDb::new(Backend::Postgres).await;
    pg.store().await;
    let lite = TestDb::new(Backend::Sqlite).await;
    lite.store().await;
    let (p, s) = (
        postgres_schema(pg.url()).await,
        sqlite_schema(lite.url()).await,
    );
    assert!(!p.columns.is_empty() && !p.checks.is_empty() && !p.indexes.is_empty());
    assert_eq!(p.columns, s.columns, "columns");
    assert_eq!(p.keys, s.keys, "primary and unique keys");
    assert_eq!(p.checks, s.checks, "check constraints");
    assert_eq!(p.indexes, s.indexes, "indexes");
}
