//! Dates and timestamps on the wire, as chrono writes them, without the formatting machinery:
//! a date as `YYYY-MM-DD`, a timestamp as RFC 3339 in UTC (`Z`, and as many fraction digits as
//! the value needs: none, 3, 6 or 9).
//!
//! A page of players carries three per player. chrono's own `Serialize` goes through
//! `fmt::Display`, whose every piece serde_json escapes separately: writing them this way took
//! 15 % off the instructions of serving a page (docs/benchmarks.md). The output is byte for byte chrono's,
//! which the tests check.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::Serializer;

/// `#[serde(serialize_with = "timestamp::serialize")]` for a `DateTime<Utc>`.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match write(t, &mut buf) {
        Some(len) => {
            // Only ASCII digits and separators were written.
            let text = std::str::from_utf8(&buf[..len]).expect("ASCII");
            serializer.serialize_str(text)
        }
        None => serde::Serialize::serialize(t, serializer),
    }
}

/// `#[serde(serialize_with = "timestamp::serialize_date")]` for a `NaiveDate`.
pub fn serialize_date<S: Serializer>(d: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 10];
    if !write_date(d, &mut buf) {
        return serde::Serialize::serialize(d, serializer);
    }
    serializer.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
}

/// Appends `t` as a JSON string, the bytes `serialize` gives.
pub fn append_json(t: &DateTime<Utc>, out: &mut Vec<u8>) {
    let mut buf = [0u8; 30];
    match write(t, &mut buf) {
        Some(len) => quoted(&buf[..len], out),
        None => serde_json::to_writer(out, t).expect("a timestamp serialises"),
    }
}

/// Appends `d` as a JSON string, the bytes `serialize_date` gives.
pub fn append_date_json(d: &NaiveDate, out: &mut Vec<u8>) {
    let mut buf = [0u8; 10];
    match write_date(d, &mut buf) {
        true => quoted(&buf, out),
        false => serde_json::to_writer(out, d).expect("a date serialises"),
    }
}

/// ASCII digits and separators need no escaping.
fn quoted(ascii: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(ascii);
    out.push(b'"');
}

/// Writes `d` as `YYYY-MM-DD`; false for a year outside 0000-9999 (chrono writes `+YYYYY`).
fn write_date(d: &NaiveDate, buf: &mut [u8; 10]) -> bool {
    let Some(year) = u32::try_from(d.year()).ok().filter(|y| *y <= 9999) else {
        return false;
    };
    put(&mut buf[0..4], year);
    buf[4] = b'-';
    put(&mut buf[5..7], d.month());
    buf[7] = b'-';
    put(&mut buf[8..10], d.day());
    true
}

/// Writes `t` into `buf` and returns the length, or `None` for what chrono writes in another
/// shape (a year outside 0000-9999, a leap second).
fn write(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    // The fields of the UTC time itself: `DateTime`'s own accessors add the (zero) offset first.
    let t = t.naive_utc();
    let nanos = t.nanosecond();
    let date: &mut [u8; 10] = (&mut buf[..10]).try_into().expect("10 bytes");
    if nanos >= 1_000_000_000 || !write_date(&t.date(), date) {
        return None;
    }
    buf[10] = b'T';
    put(&mut buf[11..13], t.hour());
    buf[13] = b':';
    put(&mut buf[14..16], t.minute());
    buf[16] = b':';
    put(&mut buf[17..19], t.second());
    let mut len = 19;
    let (digits, value) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (3, nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        (6, nanos / 1_000)
    } else {
        (9, nanos)
    };
    if digits > 0 {
        buf[len] = b'.';
        put(&mut buf[len + 1..len + 1 + digits], value);
        len += 1 + digits;
    }
    buf[len] = b'Z';
    Some(len + 1)
}

/// Writes `value` as exactly `out.len()` decimal digits, zero-padded.
fn put(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;

    fn ours(t: &DateTime<Utc>) -> String {
        serialize(t, serde_json::value::Serializer)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn chronos(t: &DateTime<Utc>) -> String {
        serde_json::to_value(t)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn writes_what_chrono_writes() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let mut checked = 0;
        for (h, m, s) in [(0, 0, 0), (4, 13, 54), (23, 59, 59)] {
            for nanos in [
                0,
                1,
                999_999_999,
                123_000_000,
                123_456_000,
                123_456_789,
                5_000,
                7_000_000,
                100_000_000,
            ] {
                let t = Utc.from_utc_datetime(&day.and_hms_nano_opt(h, m, s, nanos).unwrap());
                assert_eq!(ours(&t), chronos(&t), "{t:?}");
                checked += 1;
            }
        }
        for (y, mo, d) in [
            (1, 1, 1),
            (999, 2, 28),
            (1970, 1, 1),
            (2024, 2, 29),
            (9999, 12, 31),
        ] {
            let t = Utc.with_ymd_and_hms(y, mo, d, 12, 0, 1).unwrap();
            assert_eq!(ours(&t), chronos(&t), "{t:?}");
            checked += 1;
        }
        assert_eq!(checked, 32);
        assert_eq!(
            ours(&Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()),
            "2026-01-02T03:04:05Z"
        );
    }

    fn our_date(d: &NaiveDate) -> String {
        serialize_date(d, serde_json::value::Serializer)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn writes_dates_as_chrono_does() {
        for (y, m, d) in [
            (1900, 1, 1),
            (2001, 9, 5),
            (2024, 2, 29),
            (9999, 12, 31),
            (0, 1, 1),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                our_date(&date),
                serde_json::to_value(date).unwrap(),
                "{date}"
            );
        }
        assert_eq!(
            our_date(&NaiveDate::from_ymd_opt(2001, 9, 5).unwrap()),
            "2001-09-05"
        );
        let far = NaiveDate::from_ymd_opt(-44, 3, 15).unwrap();
        assert_eq!(our_date(&far), serde_json::to_value(far).unwrap());
        assert!(our_date(&far).starts_with('-'));
    }

    #[test]
    fn appends_what_it_serialises() {
        let t = Utc.with_ymd_and_hms(2026, 12, 2, 4, 13, 54).unwrap();
        let far = Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap();
        for t in [t, t + chrono::Duration::microseconds(1), far] {
            let mut out = Vec::new();
            append_json(&t, &mut out);
            assert_eq!(out, serde_json::to_vec(&t).unwrap());
            let mut out = Vec::new();
            append_date_json(&t.date_naive(), &mut out);
            assert_eq!(out, serde_json::to_vec(&t.date_naive()).unwrap());
        }
    }

    #[test]
    fn leaves_other_shapes_to_chrono() {
        let far = Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap();
        assert_eq!(ours(&far), chronos(&far));
        assert!(ours(&far).starts_with("+12345-"));
        let leap = Utc.from_utc_datetime(
            &NaiveDate::from_ymd_opt(2016, 12, 31)
                .unwrap()
                .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
                .unwrap(),
        );
        assert_eq!(ours(&leap), chronos(&leap));
    }
}
