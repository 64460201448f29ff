//! Durations written as a whole number and a one-letter unit (`30s`, `7d`): the one parser behind
//! `payload open --max-age` and the configuration's `persistent_client_expiration`.
//!
//! Callers differ only in their unit table, and must: in Mosquitto's configuration syntax `m` is a
//! month (30 days), while on mqsec's command line it is a minute, as in most tools.

use std::time::Duration;

/// A unit letter and the seconds it stands for.
pub type Units = [(char, u64)];

/// mqsec's command line: seconds, minutes, hours, days.
pub const CLI_UNITS: &Units = &[('s', 1), ('m', 60), ('h', 3600), ('d', 86_400)];

/// mosquitto.conf (e.g. `persistent_client_expiration`): hours, days, weeks, months (30 days) and
/// years (365 days).
pub const MOSQUITTO_UNITS: &Units = &[
    ('h', 3600),
    ('d', 86_400),
    ('w', 7 * 86_400),
    ('m', 30 * 86_400),
    ('y', 365 * 86_400),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not ASCII digits followed by exactly one unit letter from the table.
    #[error("not a whole number followed by a unit")]
    Malformed,
    #[error("too long")]
    TooLong,
}

/// Parses `text` (no surrounding whitespace) as digits followed by one unit from `units`.
/// Zero is a valid duration here; callers that need more say so themselves.
pub fn parse(text: &str, units: &Units) -> Result<Duration, DurationError> {
    let mut chars = text.chars();
    let unit = chars.next_back().ok_or(DurationError::Malformed)?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DurationError::Malformed);
    }
    let secs = units
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, secs)| *secs)
        .ok_or(DurationError::Malformed)?;
    let n: u64 = digits.parse().map_err(|_| DurationError::TooLong)?;
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or(DurationError::TooLong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_per_table() {
        assert_eq!(parse("30s", CLI_UNITS), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m", CLI_UNITS), Ok(Duration::from_secs(300)));
        assert_eq!(parse("0s", CLI_UNITS), Ok(Duration::ZERO));
        assert_eq!(
            parse("5m", MOSQUITTO_UNITS),
            Ok(Duration::from_secs(5 * 30 * 86_400))
        );
        assert_eq!(
            parse("2d", MOSQUITTO_UNITS),
            Ok(Duration::from_secs(2 * 86_400))
        );
        assert_eq!(
            parse("1y", MOSQUITTO_UNITS),
            Ok(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(parse("1w", CLI_UNITS), Err(DurationError::Malformed));
        assert_eq!(parse("30s", MOSQUITTO_UNITS), Err(DurationError::Malformed));
    }

    #[test]
    fn rejects_anything_but_digits_and_one_unit() {
        for bad in [
            "", "s", "30", "1.5h", "-1s", "+1s", "5 m", " 5m", "5mm", "5é", "٣s",
        ] {
            assert_eq!(
                parse(bad, CLI_UNITS),
                Err(DurationError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse("99999999999999999999d", CLI_UNITS),
            Err(DurationError::TooLong)
        );
        assert_eq!(
            parse("999999999999999999d", CLI_UNITS),
            Err(DurationError::TooLong)
        );
    }
}
