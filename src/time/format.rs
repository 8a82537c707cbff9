//! Times and durations as Go prints them, for output that Go programmers
//! read (a context's `Display`).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds per second.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A duration of `nanos` nanoseconds as Go's `Duration.String`: `1.5s`,
/// `2m0s`, `5h6m7.001s`, `1.1µs`, `0s`, `-3.3s`.
pub(crate) fn go_duration(nanos: i128) -> String {
    let u = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".into();
    }
    if u < NANOS_PER_SEC {
        let (prec, unit) = match u {
            ..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (int, frac) = int_and_frac(u, prec);
        return format!("{sign}{int}{frac}{unit}");
    }
    let (secs, frac) = int_and_frac(u, 9);
    let (hours, minutes, secs) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::from(sign);
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{secs}{frac}s");
    out
}

/// `v / 10^prec` and its fraction as `.ddd` without trailing zeros (empty
/// when it is zero), as Go's `fmtFrac`.
fn int_and_frac(v: u128, prec: u32) -> (u128, String) {
    let p = 10u128.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

/// `t` as Go's `Time.String` prints a time in UTC:
/// `2009-11-10 23:00:00.5 +0000 UTC` (fraction without trailing zeros).
pub(crate) fn go_utc(t: SystemTime) -> String {
    let nanos: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    };
    let secs = nanos.div_euclid(NANOS_PER_SEC as i128);
    let sub = nanos.rem_euclid(NANOS_PER_SEC as i128) as u128;
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (_, frac) = int_and_frac(sub, 9);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}{frac} +0000 UTC",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i128::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_print_as_gos() {
        // Go's own table (time_test.go, TestDurationString).
        const NS: i128 = 1;
        const US: i128 = 1000 * NS;
        const MS: i128 = 1000 * US;
        const S: i128 = 1000 * MS;
        const MIN: i128 = 60 * S;
        const H: i128 = 60 * MIN;
        for (want, d) in [
            ("0s", 0),
            ("1ns", NS),
            ("1.1µs", 1100 * NS),
            ("2.2ms", 2200 * US),
            ("3.3s", 3300 * MS),
            ("4m5s", 4 * MIN + 5 * S),
            ("4m5.001s", 4 * MIN + 5001 * MS),
            ("5h6m7.001s", 5 * H + 6 * MIN + 7001 * MS),
            ("8m0.000000001s", 8 * MIN + NS),
            ("2562047h47m16.854775807s", i128::from(i64::MAX)),
            ("-2562047h47m16.854775808s", i128::from(i64::MIN)),
        ] {
            assert_eq!(go_duration(d), want, "{d}");
        }
        assert_eq!(go_duration(-1500 * MS), "-1.5s");
        assert_eq!(go_duration(H), "1h0m0s");
    }

    #[test]
    fn times_print_as_gos_in_utc() {
        let at = |secs: u64, nanos: u32| UNIX_EPOCH + Duration::new(secs, nanos);
        assert_eq!(go_utc(at(0, 0)), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_utc(at(1_257_894_000, 0)),
            "2009-11-10 23:00:00 +0000 UTC",
            "Go's playground time"
        );
        assert_eq!(
            go_utc(at(951_782_400, 500_000_000)),
            "2000-02-29 00:00:00.5 +0000 UTC"
        );
        assert_eq!(
            go_utc(at(4_102_444_799, 123_456_789)),
            "2099-12-31 23:59:59.123456789 +0000 UTC"
        );
        assert_eq!(
            go_utc(UNIX_EPOCH - Duration::from_secs(1)),
            "1969-12-31 23:59:59 +0000 UTC"
        );
    }
}
