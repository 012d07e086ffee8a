//! `jobs::schedule`: what the original accepts, what `schedule_actual` becomes, and when a
//! schedule fires next.

use jobs::schedule::{MACROS, Schedule};
use time::OffsetDateTime;
use time::macros::datetime;

/// Parses `expression` for job `nightly` of tool `mytool`; `expected` is the `schedule_actual`
/// or the error message.
#[track_caller]
fn check_parse(expression: &str, expected: &str) {
    let actual = match Schedule::parse("mytool", "nightly", expression) {
        Ok(schedule) => {
            assert_eq!(schedule.schedule(), expression);
            schedule.schedule_actual().to_owned()
        }
        Err(err) => err.to_string(),
    };
    assert_eq!(actual, expected, "schedule {expression:?}");
}

#[test]
fn plain_expressions_are_lowercased_and_single_spaced_and_otherwise_kept() {
    let cases = [
        ("* * * * *", "* * * * *"),
        ("  0   0 * *  MON ", "0 0 * * mon"),
        ("0 0 * * 7", "0 0 * * 7"),
        ("0 0 * * Sun", "0 0 * * sun"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("5/15 * * * *", "5/15 * * * *"),
        ("*/59 */23 */31 */12 */6", "*/59 */23 */31 */12 */6"),
        ("0 0 1,15 * sun,wed", "0 0 1,15 * sun,wed"),
        ("0 9-17 * * 1-5", "0 9-17 * * 1-5"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("+5 07 * * *", "+5 07 * * *"),
        ("0 0 31 2 *", "0 0 31 2 *"),
    ];
    for (expression, expected) in cases {
        check_parse(expression, expected);
    }
}

#[test]
fn macros_expand_to_python_draws_seeded_with_tool_and_job() {
    // The minute and hour CPython draws from random.seed("mytool nightly").
    check_parse("@daily", "45 17 * * *");
    check_parse("@hourly", "45 * * * *");
    for (name, template) in MACROS {
        let actual = Schedule::parse("mytool", "nightly", name).unwrap();
        let stars: Vec<bool> = actual
            .schedule_actual()
            .split(' ')
            .map(|part| part == "*")
            .collect();
        let template_stars: Vec<bool> = template.split(' ').map(|part| part == "*").collect();
        assert_eq!(
            stars, template_stars,
            "{name} expands only the fields its template fixes"
        );
    }
}

#[test]
fn expressions_the_original_refuses_give_its_exact_message() {
    let refused = [
        // Names are single day-of-week values only: no month names, no named ranges.
        "0 0 * jan *",
        "0 0 * * mon-fri",
        // 7 means Sunday only as a single value, spelled exactly "7".
        "0 0 * * 1-7",
        "0 0 * * 07",
        // A step cannot follow a range.
        "0-30/5 * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 0 *",
        "* * * 13 *",
        "* * * * 8",
        "5-3 * * * *",
        "*/0 * * * *",
        "*/60 * * * *",
        "* * * */13 *",
        "* * * *",
        "* * * * * *",
        "",
        "1,,2 * * * *",
        "-5 * * * *",
        "a * * * *",
        // Macros match exactly.
        "@reboot",
        "@Daily",
        "@daily ",
        "@annually",
        // Accepted by the original's own check but refused by the Kubernetes cron parser that
        // would run them.
        "*/ * * * *",
        "1_0 * * * *",
    ];
    for expression in refused {
        check_parse(
            expression,
            &format!("Unable to parse cron expression \"{expression}\""),
        );
    }
}

#[test]
fn a_stored_schedule_keeps_its_actual_expression() {
    let schedule = Schedule::from_stored("@daily", "3 4 * * *").unwrap();
    assert_eq!(
        (schedule.schedule(), schedule.schedule_actual()),
        ("@daily", "3 4 * * *")
    );
    let err = Schedule::from_stored("@daily", "3 4 * *").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Unable to parse cron expression \"3 4 * *\""
    );
}

#[track_caller]
fn check_next(expression: &str, after: OffsetDateTime, expected: Option<OffsetDateTime>) {
    let schedule = Schedule::from_stored(expression, expression).unwrap();
    assert_eq!(
        schedule.next_after(after),
        expected,
        "{expression:?} after {after}"
    );
}

#[test]
fn next_after_finds_the_first_firing_strictly_after_a_time() {
    // 2026-11-29 is a Sunday; 2026-11-27 a Friday.
    let cases = [
        (
            "* * * * *",
            datetime!(2026-11-29 20:34:05 UTC),
            Some(datetime!(2026-11-29 20:35 UTC)),
        ),
        (
            "* * * * *",
            datetime!(2026-11-29 20:34 UTC),
            Some(datetime!(2026-11-29 20:35 UTC)),
        ),
        (
            "* * * * *",
            datetime!(2026-12-31 23:59:59.5 UTC),
            Some(datetime!(2027-01-01 00:00 UTC)),
        ),
        // The @daily actual of mytool/nightly.
        (
            "45 17 * * *",
            datetime!(2026-11-29 18:00 UTC),
            Some(datetime!(2026-11-30 17:45 UTC)),
        ),
        (
            "45 17 * * *",
            datetime!(2026-11-29 17:44:59 UTC),
            Some(datetime!(2026-11-29 17:45 UTC)),
        ),
        // Day of month and day of week both restricted: either matches (Fridays and the 13th).
        (
            "0 0 13 * 5",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-12-04 00:00 UTC)),
        ),
        (
            "0 0 13 * 5",
            datetime!(2026-12-11 00:00 UTC),
            Some(datetime!(2026-12-13 00:00 UTC)),
        ),
        // Only one restricted: it alone decides.
        (
            "0 0 13 * *",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-12-13 00:00 UTC)),
        ),
        (
            "0 0 * * 5",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-12-04 00:00 UTC)),
        ),
        // A stepped `*` counts as restricted (as in Kubernetes): days 1, 11, 21, 31 or Fridays.
        (
            "0 0 */10 * 5",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-12-01 00:00 UTC)),
        ),
        // Sunday is 0, 7 and sun.
        (
            "0 12 * * 0",
            datetime!(2026-11-29 11:00 UTC),
            Some(datetime!(2026-11-29 12:00 UTC)),
        ),
        (
            "0 12 * * 7",
            datetime!(2026-11-29 11:00 UTC),
            Some(datetime!(2026-11-29 12:00 UTC)),
        ),
        (
            "0 12 * * sun",
            datetime!(2026-11-29 12:00 UTC),
            Some(datetime!(2026-12-06 12:00 UTC)),
        ),
        (
            "0 12 * * 7",
            datetime!(2026-11-29 12:00 UTC),
            Some(datetime!(2026-12-06 12:00 UTC)),
        ),
        // Day names.
        (
            "30 6 * * mon,wed",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-11-30 06:30 UTC)),
        ),
        (
            "30 6 * * mon,wed",
            datetime!(2026-11-30 06:30 UTC),
            Some(datetime!(2026-12-02 06:30 UTC)),
        ),
        (
            "0 0 * * sat/2",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2026-12-05 00:00 UTC)),
        ),
        // Ranges, steps from a value, and rolling over hours, days, months and years.
        (
            "0 9-17 * * 1-5",
            datetime!(2026-11-27 17:00 UTC),
            Some(datetime!(2026-11-30 09:00 UTC)),
        ),
        (
            "5/15 * * * *",
            datetime!(2026-11-29 20:50 UTC),
            Some(datetime!(2026-11-29 21:05 UTC)),
        ),
        (
            "0 0 1 1 *",
            datetime!(2026-11-29 00:00 UTC),
            Some(datetime!(2027-01-01 00:00 UTC)),
        ),
        (
            "59 23 31 12 *",
            datetime!(2026-12-31 23:59 UTC),
            Some(datetime!(2027-12-31 23:59 UTC)),
        ),
        // 29 February: the next leap year, and across 2100, which is not one.
        (
            "0 0 29 2 *",
            datetime!(2026-03-01 00:00 UTC),
            Some(datetime!(2028-02-29 00:00 UTC)),
        ),
        (
            "0 0 29 2 *",
            datetime!(2096-03-01 00:00 UTC),
            Some(datetime!(2104-02-29 00:00 UTC)),
        ),
        // Days a month never has: the original accepts these (and @yearly can draw them).
        ("0 0 31 2 *", datetime!(2026-11-29 00:00 UTC), None),
        ("0 0 31 4,6 *", datetime!(2026-11-29 00:00 UTC), None),
        // Times in another offset are compared in UTC.
        (
            "0 19 * * *",
            datetime!(2026-11-29 20:34 +02:00),
            Some(datetime!(2026-11-29 19:00 UTC)),
        ),
    ];
    for (expression, after, expected) in cases {
        check_next(expression, after, expected);
    }
}
