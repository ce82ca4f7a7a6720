//! Strict parsing of the ALB's JWT: three base64url segments, optional `=` padding.
//!
//! Nothing here trusts the content; it only splits and decodes. The signed message is kept as
//! the exact received bytes `header.payload` because the ALB signs the padded form.

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use serde_json::{Map, Value};

use super::AlbError;

/// URL-safe alphabet, padding optional on input (the ALB pads, standard JWTs do not),
/// non-canonical trailing bits refused.
pub(crate) const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A split and decoded token, not yet verified.
#[derive(Debug)]
pub struct ParsedToken<'a> {
    /// The exact received `header.payload` bytes: what the signature covers.
    pub signed: &'a [u8],
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// The decoded signature; only the first `signature_len` bytes are meaningful.
    pub signature: [u8; 64],
    pub signature_len: usize,
}

impl ParsedToken<'_> {
    /// The raw `r||s` signature, if it has the 64 bytes of one.
    pub fn raw_signature(&self) -> Option<&[u8; 64]> {
        (self.signature_len == 64).then_some(&self.signature)
    }
}

/// Splits and decodes `raw`. Never panics, whatever the input (property-tested).
pub fn parse(raw: &[u8], max_len: usize) -> Result<ParsedToken<'_>, AlbError> {
    if raw.len() > max_len {
        return Err(AlbError::Oversized { max: max_len });
    }
    let segments = raw.split(|b| *b == b'.').count();
    if segments != 3 {
        return Err(AlbError::SegmentCount(segments));
    }
    let mut parts = raw.split(|b| *b == b'.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(AlbError::SegmentCount(segments));
    };
    if h.is_empty() || p.is_empty() || s.is_empty() {
        return Err(AlbError::EmptySegment);
    }
    let decode = |seg: &[u8]| B64URL.decode(seg).map_err(|_| AlbError::InvalidBase64);
    let header_bytes = decode(h)?;
    let payload_bytes = decode(p)?;
    // A raw P-256 signature is 64 bytes (86 base64 characters, 88 padded); anything longer
    // (DER is 70-72) is rejected without allocating for it.
    let mut signature = [0u8; 64];
    let signature_len = if s.len() > 88 {
        let len = B64URL.decode(s).map_err(|_| AlbError::InvalidBase64)?.len();
        return Err(AlbError::SignatureLength(len));
    } else {
        let mut buf = [0u8; 66];
        let len = B64URL
            .decode_slice(s, &mut buf)
            .map_err(|_| AlbError::InvalidBase64)?;
        let n = len.min(64);
        signature[..n].copy_from_slice(&buf[..n]);
        len
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&header_bytes).map_err(|_| AlbError::HeaderNotJson)?;
    let payload: Map<String, Value> =
        serde_json::from_slice(&payload_bytes).map_err(|_| AlbError::PayloadNotJson)?;
    Ok(ParsedToken {
        signed: &raw[..h.len() + 1 + p.len()],
        header,
        payload,
        signature,
        signature_len,
    })
}

/// `exp` as whole seconds: an integer, or a float truncated (lenient like the ALB's clients).
pub(crate) fn numeric_date(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        _ => None,
    }
}

/// The `kid` in the canonical hyphenated UUID form, checked before it goes into a URL.
pub(crate) fn is_uuid_kid(kid: &str) -> bool {
    kid.len() == 36 && uuid::Uuid::try_parse(kid).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_padded_and_unpadded_segments() {
        let h = "eyJhbGciOiJFUzI1NiJ9"; // {"alg":"ES256"}
        let p_padded = "eyJhIjoxfQ=="; // {"a":1}
        let p_unpadded = "eyJhIjoxfQ";
        for p in [p_padded, p_unpadded] {
            let raw = format!("{h}.{p}.AAAA");
            let t = parse(raw.as_bytes(), 1000).unwrap();
            assert_eq!(t.signed, format!("{h}.{p}").as_bytes());
            assert_eq!(t.payload["a"], 1);
        }
    }

    #[test]
    fn refuses_standard_base64_and_bad_shapes() {
        assert_eq!(parse(b"a.b", 100).unwrap_err(), AlbError::SegmentCount(2));
        assert_eq!(
            parse(b"a.b.c.d", 100).unwrap_err(),
            AlbError::SegmentCount(4)
        );
        assert_eq!(parse(b"..", 100).unwrap_err(), AlbError::EmptySegment);
        assert_eq!(
            parse(b"a+/.eyJhIjoxfQ.AAAA", 100).unwrap_err(),
            AlbError::InvalidBase64
        );
        assert_eq!(
            parse(&[b'a'; 101], 100).unwrap_err(),
            AlbError::Oversized { max: 100 }
        );
    }

    #[test]
    fn kid_must_be_a_hyphenated_uuid() {
        assert!(is_uuid_kid("2b1a6f0e-3c3a-4b7e-9a3c-1d2e3f4a5b6c"));
        assert!(!is_uuid_kid("2b1a6f0e3c3a4b7e9a3c1d2e3f4a5b6c"));
        assert!(!is_uuid_kid("../../etc/passwd"));
        assert!(!is_uuid_kid("{2b1a6f0e-3c3a-4b7e-9a3c-1d2e3f4a5b6c}"));
    }
}
