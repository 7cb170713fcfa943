use super::at;
use crate::alerts::time_intervals::{
    parse_days_of_month, parse_months, parse_time_range, parse_weekdays, parse_years,
};
use crate::alerts::{Location, TimeInterval, TimePeriod};

fn period(build: impl FnOnce(&mut TimePeriod)) -> TimePeriod {
    let mut p = TimePeriod::default();
    build(&mut p);
    p
}

fn days(list: &[&str]) -> TimePeriod {
    period(|p| {
        p.days_of_month = list
            .iter()
            .map(|d| parse_days_of_month(d).unwrap())
            .collect()
    })
}

#[test]
fn weekday_ranges() {
    let weekdays = period(|p| p.weekdays = vec![parse_weekdays("Monday:FRIDAY").unwrap()]);
    assert!(weekdays.contains(at("2026-11-24T12:00:00Z")), "Tuesday");
    assert!(weekdays.contains(at("2026-11-30T00:00:00Z")), "Monday");
    assert!(!weekdays.contains(at("2026-11-28T12:00:00Z")), "Saturday");
    assert!(!weekdays.contains(at("2026-11-29T23:59:59Z")), "Sunday");
    let weekend = period(|p| {
        p.weekdays = vec![
            parse_weekdays("saturday").unwrap(),
            parse_weekdays("sunday").unwrap(),
        ]
    });
    assert!(weekend.contains(at("2026-11-29T12:00:00Z")));
    assert!(!weekend.contains(at("2026-11-27T12:00:00Z")));
    assert!(
        parse_weekdays("saturday:sunday").is_err(),
        "the week starts on Sunday"
    );
    assert!(parse_weekdays("funday").is_err());
}

#[test]
fn negative_days_of_month_count_from_the_end() {
    let last = days(&["-1"]);
    assert!(last.contains(at("2024-02-29T10:00:00Z")), "leap year");
    assert!(!last.contains(at("2024-02-28T10:00:00Z")));
    assert!(last.contains(at("2023-02-28T10:00:00Z")));
    assert!(last.contains(at("2026-11-30T10:00:00Z")));
    let last_three = days(&["-3:-1"]);
    assert!(last_three.contains(at("2026-11-28T00:00:00Z")));
    assert!(!last_three.contains(at("2026-11-27T23:59:59Z")));
    let from_seventh_to_last_but_one = days(&["7:-2"]);
    assert!(from_seventh_to_last_but_one.contains(at("2026-06-29T00:00:00Z")));
    assert!(!from_seventh_to_last_but_one.contains(at("2026-06-30T00:00:00Z")));
    assert!(!from_seventh_to_last_but_one.contains(at("2026-06-06T00:00:00Z")));
}

#[test]
fn days_past_the_end_of_the_month() {
    // The 31st never comes in June; a range running past the end is clamped.
    let thirty_first = days(&["31"]);
    assert!(!thirty_first.contains(at("2026-06-30T12:00:00Z")));
    assert!(thirty_first.contains(at("2026-07-31T12:00:00Z")));
    let late = days(&["29:31"]);
    assert!(late.contains(at("2024-02-29T12:00:00Z")));
    assert!(!late.contains(at("2023-02-28T12:00:00Z")));
    // -31 is the 1st in a 31-day month and no day in shorter ones.
    assert!(days(&["-31"]).contains(at("2026-01-01T00:00:00Z")));
    assert!(!days(&["-31"]).contains(at("2026-02-01T00:00:00Z")));
    for bad in ["0", "32", "-32", "-1:5", "5:1", "-1:-3", "x"] {
        assert!(parse_days_of_month(bad).is_err(), "{bad}");
    }
    assert!(parse_days_of_month("1:-1").is_ok());
}

#[test]
fn times_of_day_start_inclusive_end_exclusive() {
    let office = period(|p| p.times = vec![parse_time_range("09:00", "17:00").unwrap()]);
    assert!(office.contains(at("2026-11-24T09:00:00Z")));
    assert!(office.contains(at("2026-11-24T16:59:59Z")));
    assert!(!office.contains(at("2026-11-24T17:00:00Z")));
    assert!(!office.contains(at("2026-11-24T08:59:59Z")));
    let evening = period(|p| p.times = vec![parse_time_range("22:00", "24:00").unwrap()]);
    assert!(evening.contains(at("2026-11-24T23:59:59Z")));
    assert!(!evening.contains(at("2026-11-25T00:00:00Z")));
    for (s, e) in [
        ("17:00", "09:00"),
        ("09:00", "09:00"),
        ("24:00", "24:00"),
        ("9:00", "10:00"),
        ("10:60", "11:00"),
        ("00:00", "24:01"),
    ] {
        assert!(parse_time_range(s, e).is_err(), "{s}-{e}");
    }
}

#[test]
fn months_years_and_every_field_together() {
    let winter = period(|p| {
        p.months = vec![
            parse_months("December").unwrap(),
            parse_months("1:2").unwrap(),
        ];
        p.years = vec![parse_years("2026:2027").unwrap()];
    });
    assert!(winter.contains(at("2026-12-24T12:00:00Z")));
    assert!(winter.contains(at("2027-02-01T12:00:00Z")));
    assert!(!winter.contains(at("2026-11-30T12:00:00Z")));
    assert!(!winter.contains(at("2028-01-10T12:00:00Z")));
    for bad in ["march:january", "13", "0", "smarch"] {
        assert!(parse_months(bad).is_err(), "{bad}");
    }
    assert!(parse_years("2027:2026").is_err());
    let all = period(|p| {
        p.weekdays = vec![parse_weekdays("tuesday").unwrap()];
        p.times = vec![parse_time_range("09:00", "10:00").unwrap()];
        p.months = vec![parse_months("november").unwrap()];
    });
    assert!(all.contains(at("2026-11-24T09:30:00Z")));
    assert!(!all.contains(at("2026-11-24T10:30:00Z")));
    assert!(!all.contains(at("2026-11-25T09:30:00Z")));
}

#[test]
fn locations_shift_the_clock() {
    let late_monday = period(|p| {
        p.weekdays = vec![parse_weekdays("tuesday").unwrap()];
        p.times = vec![parse_time_range("00:00", "01:00").unwrap()];
        p.location = Location::parse("+02:00").unwrap();
    });
    // 22:30 UTC on Monday is 00:30 on Tuesday at +02:00.
    assert!(late_monday.contains(at("2026-11-23T22:30:00Z")));
    assert!(!late_monday.contains(at("2026-11-24T00:30:00Z")));
    assert_eq!(Location::parse("UTC"), Ok(Location::Utc));
    assert_eq!(
        Location::parse("-05:30"),
        Ok(Location::Fixed(-(5 * 3600 + 30 * 60)))
    );
    for bad in ["Europe/Berlin", "Local", "+2", "+24:00", ""] {
        assert!(Location::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn intervals_are_any_of_their_periods() {
    let interval = TimeInterval {
        name: "maintenance".to_owned(),
        periods: vec![
            period(|p| p.weekdays = vec![parse_weekdays("saturday").unwrap()]),
            period(|p| p.times = vec![parse_time_range("02:00", "03:00").unwrap()]),
        ],
        line: 0,
    };
    assert!(interval.contains(at("2026-11-28T12:00:00Z")));
    assert!(interval.contains(at("2026-11-24T02:30:00Z")));
    assert!(!interval.contains(at("2026-11-24T12:00:00Z")));
    assert!(
        !TimeInterval::default().contains(at("2026-11-24T12:00:00Z")),
        "no periods: never"
    );
    assert!(
        TimePeriod::default().contains(at("2026-11-24T12:00:00Z")),
        "no fields: always"
    );
}
