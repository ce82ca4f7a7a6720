-- The client's own x-request-id, kept beside the id this service generated (request_id, the
-- id of record), when the client sent a usable one.
alter table audit_log add column client_request_id text;
