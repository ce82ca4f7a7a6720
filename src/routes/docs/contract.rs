//! What the handlers' annotations cannot say, added to the generated document: the patterns
//! and bounds the parsers enforce (derived from the same domain code, so the two cannot
//! drift), the merge-patch body, the accepted forms of the conditional and idempotency headers,
//! and every error status an operation can answer with. The document then says exactly what
//! the server accepts: a request the document allows is not refused for its shape, and one it
//! forbids is refused (schemathesis checks both in the test command).

use serde_json::{Map, Value, json};

use crate::{
    domain::{Country, DateOfBirth, PlayerName, TeamName, trimmed_text_pattern},
    routes::extract::{EntityTags, MAX_BODY_BYTES},
};

/// The hyphenated UUID form, the only one ids are accepted in.
const UUID_PATTERN: &str =
    "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$";
/// `Idempotency-Key`: 1-255 visible ASCII characters.
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,255}$";

pub fn apply(doc: &mut Value) {
    player_input(doc);
    player_patch(doc);
    list_parameters(doc);
    audit_parameters(doc);
    headers(doc);
    error_statuses(doc);
}

fn schema<'a>(doc: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    doc["components"]["schemas"][name]
        .as_object_mut()
        .unwrap_or_else(|| panic!("schema {name} is in the document"))
}

fn operation<'a>(doc: &'a mut Value, path: &str, method: &str) -> &'a mut Map<String, Value> {
    doc["paths"][path][method]
        .as_object_mut()
        .unwrap_or_else(|| panic!("{method} {path} is in the document"))
}

fn parameter<'a>(op: &'a mut Map<String, Value>, name: &str) -> &'a mut Map<String, Value> {
    op.get_mut("parameters")
        .and_then(Value::as_array_mut)
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == name))
        .and_then(|p| p["schema"].as_object_mut())
        .unwrap_or_else(|| panic!("parameter {name} is declared"))
}

/// `name` and `team` trim to 1-100 characters without control or format characters.
fn text(max: usize) -> Value {
    json!({ "type": "string", "pattern": trimmed_text_pattern(max, true) })
}

fn country() -> Value {
    json!({ "type": "string", "pattern": Country::pattern() })
}

fn shirt_number(nullable: bool) -> Value {
    json!({
        "type": if nullable { json!(["integer", "null"]) } else { json!("integer") },
        "minimum": 1,
        "maximum": 99,
    })
}

/// The members of a player document, keyed by name, with their descriptions kept.
fn player_members(doc: &mut Value, optional_nullable: bool) -> Map<String, Value> {
    let described = schema(doc, "PlayerInput")["properties"].clone();
    let mut members = Map::new();
    let mut put = |name: &str, mut s: Value| {
        if let Some(d) = described[name].get("description") {
            s["description"] = d.clone();
        }
        members.insert(name.to_owned(), s);
    };
    put("name", text(PlayerName::MAX_CHARS));
    put(
        "date_of_birth",
        json!({ "type": "string", "format": "date", "pattern": DateOfBirth::PATTERN }),
    );
    put("country", country());
    put("team", text(TeamName::MAX_CHARS));
    put(
        "position",
        json!({ "$ref": "#/components/schemas/Position" }),
    );
    put("club_number", shirt_number(optional_nullable));
    put("national_team_number", shirt_number(optional_nullable));
    members
}

fn player_input(doc: &mut Value) {
    let members = player_members(doc, true);
    let input = schema(doc, "PlayerInput");
    input.insert("properties".into(), Value::Object(members));
    input.insert("additionalProperties".into(), json!(false));
}

/// RFC 7396 merge patch of `PlayerInput`: every member optional; `null` removes an optional
/// number (and, for a required member, is refused like its absence would be).
fn player_patch(doc: &mut Value) {
    let members = player_members(doc, true);
    doc["components"]["schemas"]["PlayerPatch"] = json!({
        "type": "object",
        "description": "A merge patch (RFC 7396) of `PlayerInput`: members to change; `null` \
            removes an optional number. Read-only members (`id`, `version`, timestamps) and \
            unknown members are refused.",
        "properties": members,
        "additionalProperties": false,
    });
    let op = operation(doc, "/v1/players/{id}", "patch");
    let body = json!({ "schema": { "$ref": "#/components/schemas/PlayerPatch" } });
    op["requestBody"]["content"] = json!({
        "application/merge-patch+json": body,
        "application/json": body,
    });
}

fn list_parameters(doc: &mut Value) {
    let op = operation(doc, "/v1/players", "get");
    parameter(op, "country").extend(as_map(country()));
    // The name filter trims to 1-100 characters of any kind.
    parameter(op, "name").insert(
        "pattern".into(),
        json!(trimmed_text_pattern(PlayerName::MAX_CHARS, false)),
    );
    parameter(op, "cursor").insert("minLength".into(), json!(1));
}

fn audit_parameters(doc: &mut Value) {
    let op = operation(doc, "/v1/admin/audit", "get");
    parameter(op, "player_id").extend(as_map(json!({ "format": "uuid", "pattern": UUID_PATTERN })));
    parameter(op, "actor_id").insert("pattern".into(), json!(trimmed_text_pattern(255, false)));
    for time in ["from", "to"] {
        parameter(op, time).insert("format".into(), json!("date-time"));
    }
    parameter(op, "cursor").insert("minLength".into(), json!(1));
}

fn headers(doc: &mut Value) {
    let tags = json!({ "type": "string", "pattern": EntityTags::PATTERN });
    for (path, method, header) in [
        ("/v1/players/{id}", "get", "If-None-Match"),
        ("/v1/players/{id}", "patch", "If-Match"),
        ("/v1/players/{id}", "delete", "If-Match"),
    ] {
        let p = parameter(operation(doc, path, method), header);
        p.clear();
        p.extend(as_map(tags.clone()));
    }
    let p = parameter(operation(doc, "/v1/players", "post"), "Idempotency-Key");
    p.clear();
    p.extend(as_map(
        json!({ "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN }),
    ));
    for (path, method) in [
        ("/v1/players/{id}", "get"),
        ("/v1/players/{id}", "patch"),
        ("/v1/players/{id}", "delete"),
    ] {
        parameter(operation(doc, path, method), "id").insert("pattern".into(), json!(UUID_PATTERN));
    }
}

/// Statuses every operation of a kind can answer with, besides its own: a store-backed one 503
/// when the database is unreachable, one that reads a body 408/413/415, a conditional one 400
/// for a malformed entity tag.
fn error_statuses(doc: &mut Value) {
    let problem = |what: &str| {
        json!({
            "description": what,
            "content": { "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" } } },
        })
    };
    let store_backed = [
        ("/v1/players", "get"),
        ("/v1/players", "post"),
        ("/v1/players/{id}", "get"),
        ("/v1/players/{id}", "patch"),
        ("/v1/players/{id}", "delete"),
        ("/v1/admin/audit", "get"),
    ];
    for (path, method) in store_backed {
        add_response(
            doc,
            path,
            method,
            "503",
            problem("`not_ready`: the database cannot be reached (retry later)"),
        );
    }
    for (path, method) in [("/v1/players", "post"), ("/v1/players/{id}", "patch")] {
        add_response(
            doc,
            path,
            method,
            "408",
            problem("`request_timeout`: the body did not arrive within HTTP_BODY_TIMEOUT_SECS"),
        );
        add_response(
            doc,
            path,
            method,
            "413",
            problem(&format!(
                "`payload_too_large` (over {} KiB)",
                MAX_BODY_BYTES / 1024
            )),
        );
        add_response(
            doc,
            path,
            method,
            "415",
            problem("`unsupported_media_type`"),
        );
    }
    for (path, method) in [
        ("/v1/players/{id}", "get"),
        ("/v1/players/{id}", "patch"),
        ("/v1/players/{id}", "delete"),
    ] {
        add_response(
            doc,
            path,
            method,
            "400",
            problem("`invalid_entity_tag`, `malformed_json` (PATCH)"),
        );
    }
}

/// Adds `status` unless the annotations already declare it (their description is more precise).
fn add_response(doc: &mut Value, path: &str, method: &str, status: &str, response: Value) {
    let responses = operation(doc, path, method)
        .entry("responses")
        .or_insert_with(|| json!({}));
    if let Some(map) = responses.as_object_mut() {
        map.entry(status).or_insert(response);
    }
}

fn as_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
