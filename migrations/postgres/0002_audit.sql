-- The audit trail: one row per create, update and delete of a player, written in the
-- transaction of the change. No foreign key to players: the record of a deletion outlives
-- the player.
create table audit_log (
    id uuid primary key,
    occurred_at timestamptz not null,
    actor_kind text not null check (actor_kind in ('user', 'service')),
    -- The user's sub or the service's client id (created_by without its kind prefix).
    actor_id text not null,
    action text not null check (action in ('create', 'update', 'delete')),
    player_id uuid not null,
    -- JSON: {"<field>": {"before": .., "after": ..}} for each field that changed.
    changes text not null,
    request_id text not null,
    -- The X-Ray trace id (Root) of the ALB's X-Amzn-Trace-Id, when the request had one.
    trace_id text
);

-- The listing is newest first, whole or narrowed to one player or one actor.
create index audit_log_occurred_at_id_idx on audit_log (occurred_at, id);
create index audit_log_player_id_occurred_at_idx on audit_log (player_id, occurred_at, id);
create index audit_log_actor_id_occurred_at_idx on audit_log (actor_id, occurred_at, id);
