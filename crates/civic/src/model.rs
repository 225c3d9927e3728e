//! The complaint's life: statuses and the moves between them, deadlines, and
//! what a filing carries once validated.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::catalog::Deadline;
use crate::geo::Point;

/// Where a complaint is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Filed, nobody has looked yet.
    Received,
    /// A department has taken it.
    Acknowledged,
    /// Someone is working on it.
    InProgress,
    /// The department says it is fixed; the reporter may reopen it.
    Resolved,
    /// Finished for good (or merged into another complaint).
    Closed,
}

impl Status {
    /// Every status in workflow order.
    pub const ALL: [Status; 5] = [
        Status::Received,
        Status::Acknowledged,
        Status::InProgress,
        Status::Resolved,
        Status::Closed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Acknowledged => "acknowledged",
            Status::InProgress => "in_progress",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether work is still expected (Open311's `open`).
    pub fn is_open(self) -> bool {
        self < Status::Resolved
    }

    /// Open311's two statuses.
    pub fn open311(self) -> &'static str {
        if self.is_open() { "open" } else { "closed" }
    }

    /// Whether staff may move a complaint from `self` to `to`: only forward.
    /// Going back is [`Status::reopened`], which is a separate action so a
    /// slip of the status menu cannot undo a resolution.
    pub fn may_become(self, to: Status) -> bool {
        to > self
    }

    /// The status after a reopen, if this one can be reopened.
    pub fn reopened(self) -> Option<Status> {
        (!self.is_open()).then_some(Status::Acknowledged)
    }
}

/// One attribute's validated value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AttributeValue {
    /// string, text, number (as written), datetime (normalised), singlevaluelist key.
    One(String),
    /// multivaluelist keys.
    Many(Vec<String>),
}

/// Who filed, as far as they said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reporter {
    /// Signed-in user.
    pub user_id: Option<i64>,
    /// Email for notifications.
    pub email: Option<String>,
    /// First and last name joined.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Hide who they are from staff too.
    pub anonymous: bool,
}

/// A complaint as filed, validated against the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Filing {
    /// Known service code.
    pub service_code: String,
    /// Location inside the city, if given.
    pub at: Option<Point>,
    /// Address text, if given.
    pub address: Option<String>,
    /// Address id, if given.
    pub address_id: Option<String>,
    /// At most 4,000 characters.
    pub description: String,
    /// Values by attribute code.
    pub attributes: BTreeMap<String, AttributeValue>,
    /// http(s) link to media.
    pub media_url: Option<String>,
    /// The reporter.
    pub reporter: Reporter,
}

/// The deadline of a complaint filed at `filed` (Unix seconds) under `deadline` in zone `tz`.
pub fn deadline_of(deadline: Deadline, filed: i64, tz: &jiff::tz::TimeZone) -> i64 {
    match deadline {
        Deadline::Hours { hours } => filed + i64::from(hours) * 3600,
        Deadline::SameDay { cutoff_hour } => {
            let Ok(ts) = jiff::Timestamp::from_second(filed) else {
                return filed + 86_400;
            };
            let local = ts.to_zoned(tz.clone());
            let days = if local.hour() < i8::try_from(cutoff_hour).unwrap_or(18) {
                1
            } else {
                2
            };
            // The end of the day is the start of the next one, which survives DST changes.
            local
                .date()
                .checked_add(jiff::Span::new().days(days))
                .ok()
                .and_then(|d| d.to_zoned(tz.clone()).ok())
                .map_or(filed + 86_400 * days, |z| z.timestamp().as_second())
        }
    }
}

/// Formats Unix seconds as ISO-8601 with the zone's offset, as Open311 wants.
pub fn iso(seconds: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_default()
}

/// Parses an ISO-8601 time with an offset (`Z` or `±hh:mm`) into Unix seconds.
pub fn parse_iso(text: &str) -> Option<i64> {
    text.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seoul() -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get("Asia/Seoul").unwrap()
    }

    fn at(text: &str) -> i64 {
        parse_iso(text).unwrap()
    }

    #[test]
    fn the_workflow_only_goes_forward_and_reopening_is_its_own_move() {
        assert!(Status::Received.may_become(Status::Acknowledged));
        assert!(Status::Acknowledged.may_become(Status::Resolved));
        assert!(!Status::Resolved.may_become(Status::InProgress));
        assert!(!Status::Closed.may_become(Status::Closed));
        assert_eq!(Status::Resolved.reopened(), Some(Status::Acknowledged));
        assert_eq!(Status::InProgress.reopened(), None);
        assert_eq!(Status::Resolved.open311(), "closed");
        assert_eq!(Status::parse("in_progress"), Some(Status::InProgress));
    }

    #[test]
    fn same_day_deadlines_end_at_midnight_and_move_a_day_after_the_cutoff() {
        let tz = seoul();
        let rule = Deadline::SameDay { cutoff_hour: 18 };
        assert_eq!(
            deadline_of(rule, at("2026-03-02T17:59:00+09:00"), &tz),
            at("2026-03-03T00:00:00+09:00")
        );
        assert_eq!(
            deadline_of(rule, at("2026-03-02T18:00:00+09:00"), &tz),
            at("2026-03-04T00:00:00+09:00")
        );
        assert_eq!(
            deadline_of(Deadline::Hours { hours: 24 }, 1000, &tz),
            1000 + 86_400
        );
    }

    #[test]
    fn times_are_written_with_the_citys_offset_and_read_back() {
        let tz = seoul();
        let t = at("2026-03-02T08:00:00Z");
        assert_eq!(iso(t, &tz), "2026-03-02T17:00:00+09:00");
        assert_eq!(parse_iso(&iso(t, &tz)), Some(t));
        assert_eq!(parse_iso("2026-03-02 08:00"), None, "a zone is required");
    }
}
