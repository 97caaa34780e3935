//! [`Month`]: the UTC calendar month an archived order's partition is named for, and the
//! date arithmetic behind it.

/// One day in unix milliseconds.
pub(super) const DAY_MS: i64 = 86_400_000;

/// A UTC calendar month: the archive's partition of the orders created in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Month {
    year: i64,
    /// 1 to 12.
    month: u32,
}

impl Month {
    /// The month holding unix millisecond `ms`.
    pub(super) fn of(ms: i64) -> Self {
        let (year, month, _) = civil_from_days(ms.div_euclid(DAY_MS));
        Self { year, month }
    }

    pub(super) fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its first millisecond; `None` where that is beyond `i64` (only for months no
    /// millisecond timestamp can reach the start of: the partition is then unbounded).
    pub(super) fn start_ms(self) -> Option<i64> {
        days_from_civil(self.year, self.month, 1).checked_mul(DAY_MS)
    }

    /// The partition name's suffix, `YYYYMM`.
    pub(super) fn suffix(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`): the
/// month boundaries without a date library.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`): year, month 1 to 12,
/// day 1 to 31.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted + 2) / 5 + 1;
    let month = if shifted < 10 {
        shifted + 3
    } else {
        shifted - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are in range by construction (1..=12, 1..=31).
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::{DAY_MS, Month, civil_from_days, days_from_civil};

    #[test]
    fn months_start_where_the_calendar_says() {
        assert_eq!(
            Month::of(0),
            Month {
                year: 1970,
                month: 1
            }
        );
        assert_eq!(
            Month::of(-1),
            Month {
                year: 1969,
                month: 12
            }
        );
        assert_eq!(
            Month {
                year: 1970,
                month: 1
            }
            .start_ms(),
            Some(0)
        );
        // 2024-02-29T23:59:59.999Z, then 2024-03-01T00:00:00Z.
        assert_eq!(
            Month::of(1_709_251_199_999),
            Month {
                year: 2024,
                month: 2
            }
        );
        assert_eq!(
            Month {
                year: 2024,
                month: 3
            }
            .start_ms(),
            Some(1_709_251_200_000)
        );
        assert_eq!(
            Month {
                year: 2024,
                month: 12
            }
            .next(),
            Month {
                year: 2025,
                month: 1
            }
        );
        assert_eq!(
            Month {
                year: 2025,
                month: 1
            }
            .suffix(),
            "202501"
        );
    }

    #[test]
    fn every_day_round_trips_and_each_month_holds_its_days() {
        // From 1600 to 2400: leap centuries and ordinary ones.
        for days in -135_000..157_000 {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            let of = Month::of(days * DAY_MS);
            let start = of.start_ms().unwrap_or(i64::MIN);
            let end = of.next().start_ms().unwrap_or(i64::MAX);
            assert!(start <= days * DAY_MS && days * DAY_MS < end);
        }
    }

    #[test]
    fn the_extremes_of_i64_still_have_a_month() {
        for ms in [i64::MIN, i64::MAX] {
            let month = Month::of(ms);
            let start = month.start_ms().unwrap_or(i64::MIN);
            let end = month.next().start_ms().unwrap_or(i64::MAX);
            assert!(start <= ms && (ms < end || end == i64::MAX));
        }
    }
}
