//! Calendar arithmetic (Howard Hinnant's algorithms), so dates need no time crate and no float.
//! Generated traffic counts days from [`DAY_ZERO`].

/// The first day of train traffic, in days since 1970-01-01 (a Monday).
pub(crate) const DAY_ZERO: i64 = days_from_civil(2026, 1, 5);
pub(crate) const DAY_ZERO_UNIX_SECONDS: i64 = DAY_ZERO * 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub(crate) const fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a count of days since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// `YYYY-MM-DD` of a fleet day.
pub(crate) fn iso_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(DAY_ZERO + day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// (year, month) of a fleet day, for monthly directories.
pub(crate) fn year_month(day: i64) -> (i64, i64) {
    let (y, m, _) = civil_from_days(DAY_ZERO + day);
    (y, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_well_formed() {
        assert_eq!(iso_date(0), "2026-01-05");
        assert_eq!(iso_date(56), "2026-03-02");
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(year_month(27), (2026, 2));
    }
}
