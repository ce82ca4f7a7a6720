-- Players, and the Idempotency-Key memory of POST /v1/players.
create table players (
    id uuid primary key,
    -- "C" collation: byte order, the same order SQLite uses, so paging by name behaves alike.
    name text collate "C" not null check (char_length(name) between 1 and 100),
    name_folded text not null,
    date_of_birth date not null check (date_of_birth >= date '1900-01-01'),
    country text not null check (country ~ '^[A-Z]{3}$'),
    team text not null check (char_length(team) between 1 and 100),
    position text not null check (position in ('goalkeeper', 'defender', 'midfielder', 'forward')),
    club_number integer check (club_number between 1 and 99),
    national_team_number integer check (national_team_number between 1 and 99),
    version bigint not null default 1 check (version >= 1),
    created_at timestamptz not null,
    updated_at timestamptz not null,
    created_by text not null,
    updated_by text not null,
    constraint players_team_club_number_key unique (team, club_number)
);

create index players_name_id_idx on players (name, id);
create index players_date_of_birth_id_idx on players (date_of_birth, id);
create index players_created_at_id_idx on players (created_at, id);
create index players_country_idx on players (country);

create table idempotency_keys (
    actor text not null,
    key text not null,
    request_hash text not null,
    -- The body first returned, replayed verbatim on a retry.
    response text not null,
    created_at timestamptz not null,
    primary key (actor, key)
);

create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
