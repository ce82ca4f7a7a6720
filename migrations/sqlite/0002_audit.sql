-- The audit trail; same logical schema as migrations/postgres/0002_audit.sql (ids 16-byte
-- blobs, timestamps integer microseconds since the epoch).
create table audit_log (
    id blob primary key not null,
    occurred_at integer not null,
    actor_kind text not null check (actor_kind in ('user', 'service')),
    actor_id text not null,
    action text not null check (action in ('create', 'update', 'delete')),
    player_id blob not null,
    changes text not null,
    request_id text not null,
    trace_id text
);

create index audit_log_occurred_at_id_idx on audit_log (occurred_at, id);
create index audit_log_player_id_occurred_at_idx on audit_log (player_id, occurred_at, id);
create index audit_log_actor_id_occurred_at_idx on audit_log (actor_id, occurred_at, id);
