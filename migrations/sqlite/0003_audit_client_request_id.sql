-- Same as migrations/postgres/0003_audit_client_request_id.sql.
alter table audit_log add column client_request_id text;
