//! Wall-clock milliseconds for what is stored (expiry, will delay) and back: an `Instant` is
//! only meaningful inside the process that took it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The wall-clock time of `t` (a moment of this process).
pub fn wall_ms(t: Instant) -> u64 {
    let now = Instant::now();
    let wall = now_ms();
    if t >= now {
        wall.saturating_add(ms(t - now))
    } else {
        wall.saturating_sub(ms(now - t))
    }
}

/// The moment of this process at wall-clock `at` (a past moment before this process's clock
/// began is clamped to now: only "has it passed" matters for those).
pub fn instant_at(at: u64) -> Instant {
    let now = Instant::now();
    let wall = now_ms();
    if at >= wall {
        let d = Duration::from_millis(at - wall);
        now.checked_add(d)
            .unwrap_or_else(|| now + Duration::from_secs(u64::from(u32::MAX)))
    } else {
        now.checked_sub(Duration::from_millis(wall - at))
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_within_a_millisecond_or_two() {
        let t = Instant::now() + Duration::from_secs(30);
        let back = instant_at(wall_ms(t));
        let diff = if back > t { back - t } else { t - back };
        assert!(diff < Duration::from_millis(5), "{diff:?}");
        let past = wall_ms(Instant::now()) - 5_000;
        assert!(instant_at(past) < Instant::now());
    }
}
