//! The ALB's `X-Amzn-Trace-Id` header and the `x-request-id` a client may send.
//!
//! Both come from outside, so both are parsed defensively: a malformed value is ignored (the
//! request gets fresh ids), never an error and never a panic.

use std::fmt;

/// Longest `X-Amzn-Trace-Id` we look at; ALB headers are far shorter.
const MAX_TRACE_HEADER_LEN: usize = 1024;
/// Longest client-supplied request id we keep.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// An X-Ray trace id, `1-<8 hex epoch seconds>-<24 hex random>`, e.g.
/// `1-5759e988-bd862e3fe1be46a994272793`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct XrayTraceId(String);

impl XrayTraceId {
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let ok = b.len() == 35
            && b[0] == b'1'
            && b[1] == b'-'
            && b[10] == b'-'
            && b[2..10].iter().all(u8::is_ascii_hexdigit)
            && b[11..].iter().all(u8::is_ascii_hexdigit);
        ok.then(|| XrayTraceId(s.to_ascii_lowercase()))
    }

    /// A fresh id for a request that arrived without a trace header (the epoch part is the
    /// current time, as X-Ray requires).
    pub fn generate() -> Self {
        let secs = chrono::Utc::now().timestamp().max(0) as u32;
        let random = uuid::Uuid::new_v4().simple().to_string();
        XrayTraceId(format!("1-{secs:08x}-{}", &random[..24]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same id as the 32 hex digits OpenTelemetry uses (epoch part followed by random part).
    pub fn to_otel_hex(&self) -> String {
        format!("{}{}", &self.0[2..10], &self.0[11..])
    }

    /// The 16 bytes of the OpenTelemetry trace id.
    pub fn to_bytes(&self) -> [u8; 16] {
        let hex = self.to_otel_hex();
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            // Validated hex at construction, so this cannot fail.
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }
}

impl fmt::Display for XrayTraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parts of `X-Amzn-Trace-Id` the service uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    pub root: XrayTraceId,
    /// The caller's segment id, 16 hex digits. The ALB itself never sends one.
    pub parent: Option<String>,
    /// `Sampled=1` / `Sampled=0`; `None` when absent or `?` (the decision is ours).
    pub sampled: Option<bool>,
    /// The ALB's own `Self=` id, kept only for logs.
    pub self_id: Option<String>,
}

impl TraceHeader {
    /// Parses the header value. `None` when it has no valid `Root=`; an invalid `Parent=` or
    /// `Sampled=` is dropped on its own; unknown fields are ignored.
    pub fn parse(header: &str) -> Option<Self> {
        if header.len() > MAX_TRACE_HEADER_LEN {
            return None;
        }
        let mut root = None;
        let mut parent = None;
        let mut sampled = None;
        let mut self_id = None;
        for field in header.split(';') {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                k if k.eq_ignore_ascii_case("Root") => {
                    // Two different roots is a forged or broken header.
                    let parsed = XrayTraceId::parse(value)?;
                    if root.as_ref().is_some_and(|r| r != &parsed) {
                        return None;
                    }
                    root = Some(parsed);
                }
                k if k.eq_ignore_ascii_case("Parent")
                    && value.len() == 16
                    && value.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    parent = Some(value.to_ascii_lowercase());
                }
                k if k.eq_ignore_ascii_case("Sampled") => {
                    sampled = match value {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    };
                }
                k if k.eq_ignore_ascii_case("Self") && XrayTraceId::parse(value).is_some() => {
                    self_id = Some(value.to_owned());
                }
                _ => {}
            }
        }
        Some(TraceHeader {
            root: root?,
            parent,
            sampled,
            self_id,
        })
    }

    /// A header for a request that came without one: a fresh root, no parent.
    pub fn new_root() -> Self {
        TraceHeader {
            root: XrayTraceId::generate(),
            parent: None,
            sampled: None,
            self_id: None,
        }
    }
}

/// The client's `x-request-id` if it is safe to echo and log: 1 to 128 characters from
/// `[A-Za-z0-9._:-]`. Anything else yields `None` (the caller then generates an id).
pub fn request_id_from_header(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    ok.then(|| value.to_owned())
}

/// A new request id (UUID v7: sortable by time, unique across tasks).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    #[test]
    fn alb_header_with_root_only() {
        let h = TraceHeader::parse(&format!("Root={ROOT}")).unwrap();
        assert_eq!(h.root.as_str(), ROOT);
        assert_eq!(h.parent, None);
        assert_eq!(h.sampled, None);
    }

    #[test]
    fn full_header_with_self_and_unknown_fields() {
        let h = TraceHeader::parse(&format!(
            "Self=1-67891234-12456789abcdef012345678;Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:1|68fd508a:5;CalledFrom=app"
        ))
        .unwrap();
        assert_eq!(h.root.as_str(), ROOT);
        assert_eq!(h.parent.as_deref(), Some("53995c3f42cd8ad8"));
        assert_eq!(h.sampled, Some(true));
        assert_eq!(
            h.self_id, None,
            "Self with 23 hex digits is invalid and dropped"
        );
        let h = TraceHeader::parse(&format!(
            "Self=1-67891234-12456789abcdef0123456789;Root={ROOT};Sampled=0"
        ))
        .unwrap();
        assert_eq!(
            h.self_id.as_deref(),
            Some("1-67891234-12456789abcdef0123456789")
        );
        assert_eq!(h.sampled, Some(false));
    }

    #[test]
    fn spaces_and_unknown_sampled_tolerated() {
        let h = TraceHeader::parse(&format!(" Root={ROOT} ; Sampled=?")).unwrap();
        assert_eq!(h.root.as_str(), ROOT);
        assert_eq!(h.sampled, None);
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for bad in [
            "",
            "Root=",
            "Parent=53995c3f42cd8ad8",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e98-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279",
            "Root=1-5759e988-bd862e3fe1be46a99427279z",
            "Root=1-5759e988-bd862e3fe1be46a994272793x",
            "garbage",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Root=1-5759e988-bd862e3fe1be46a994272794",
        ] {
            assert_eq!(TraceHeader::parse(bad), None, "{bad:?}");
        }
        assert_eq!(TraceHeader::parse(&"Root=".repeat(500)), None);
    }

    #[test]
    fn invalid_parent_is_dropped_not_fatal() {
        let h = TraceHeader::parse(&format!("Root={ROOT};Parent=xyz")).unwrap();
        assert_eq!(h.parent, None);
    }

    #[test]
    fn otel_form_concatenates_the_hex_parts() {
        let id = XrayTraceId::parse(ROOT).unwrap();
        assert_eq!(id.to_otel_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(id.to_bytes()[0], 0x57);
        assert_eq!(id.to_bytes()[15], 0x93);
    }

    #[test]
    fn generated_ids_are_valid_and_current() {
        let id = XrayTraceId::generate();
        assert!(XrayTraceId::parse(id.as_str()).is_some(), "{id}");
        let secs = u32::from_str_radix(&id.as_str()[2..10], 16).unwrap() as i64;
        assert!((chrono::Utc::now().timestamp() - secs).abs() < 5);
        assert!(request_id_from_header(&new_request_id()).is_some());
    }

    #[test]
    fn request_ids() {
        assert_eq!(
            request_id_from_header("abc-123_x.y:z").as_deref(),
            Some("abc-123_x.y:z")
        );
        assert_eq!(
            request_id_from_header(&"a".repeat(128)).map(|s| s.len()),
            Some(128)
        );
        for bad in ["", " ", "a b", "a\nb", "<script>", "é", "a/b", "a\"b"] {
            assert_eq!(request_id_from_header(bad), None, "{bad:?}");
        }
        assert_eq!(request_id_from_header(&"a".repeat(129)), None);
    }

    proptest! {
        #[test]
        fn trace_header_parser_never_panics(s in "\\PC{0,300}") {
            let _ = TraceHeader::parse(&s);
        }

        #[test]
        fn trace_header_fields_in_any_order(parent in "[0-9a-f]{16}", junk in "X[A-Za-z]{0,8}=[^;]{0,20}") {
            let h = TraceHeader::parse(&format!("{junk};Parent={parent};Root={ROOT}")).unwrap();
            prop_assert_eq!(h.root.as_str(), ROOT);
            prop_assert_eq!(h.parent.as_deref(), Some(parent.as_str()));
        }

        #[test]
        fn accepted_request_ids_are_safe(s in "\\PC{0,200}") {
            if let Some(id) = request_id_from_header(&s) {
                prop_assert!(id.len() <= 128);
                prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b)));
            }
        }
    }
}
