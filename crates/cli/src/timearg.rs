//! Time arguments: RFC3339, nanoseconds since the epoch, or an offset from
//! the first event of the recording (`+1.5s`, `+200ms`, `+30us`, `+10ns`).

use anyhow::{anyhow, bail, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn parse(s: &str, first_ns: u64) -> Result<u64> {
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('+') {
        let split = rel
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rel.len());
        let (num, unit) = rel.split_at(split);
        let v: f64 = num
            .parse()
            .map_err(|_| anyhow!("bad relative time {s:?}: expected e.g. +1.5s"))?;
        let scale = match unit {
            "" | "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            "m" | "min" => 60e9,
            _ => bail!("bad unit {unit:?} in {s:?}: use s, ms, us, ns or min"),
        };
        return Ok(first_ns.saturating_add((v * scale) as u64));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return s.parse().map_err(|_| anyhow!("time {s:?} is out of range"));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| anyhow!("bad time {s:?} ({e}): use RFC3339 (2026-11-23T10:00:00Z), ns since the epoch, or +1.5s"))?;
    u64::try_from(t.unix_timestamp_nanos()).map_err(|_| anyhow!("time {s:?} is before 1970"))
}

pub fn rfc3339(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ns.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(parse("+1.5s", 1000).unwrap(), 1_500_001_000);
        assert_eq!(parse("+200ms", 0).unwrap(), 200_000_000);
        assert_eq!(parse("12345", 0).unwrap(), 12345);
        assert_eq!(parse("1970-01-01T00:00:01Z", 0).unwrap(), 1_000_000_000);
        assert!(parse("+1.5parsecs", 0).is_err());
        assert!(parse("yesterday", 0).is_err());
        assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
    }
}
