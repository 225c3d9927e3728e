//! Abuse controls: fixed-window rate limits per account and per address,
//! and the words that send a complaint to the moderation queue.

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys remembered at most; beyond this, expired windows are dropped first
/// and then everything, so a flood of addresses cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

/// At most `max` events per key in each window of `window_secs`.
#[derive(Debug)]
pub struct RateLimit {
    max: u32,
    window_secs: i64,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimit {
    /// A limit of `max` per `window_secs` seconds.
    pub fn new(max: u32, window_secs: i64) -> RateLimit {
        RateLimit {
            max,
            window_secs: window_secs.max(1),
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one event for `key` at `now`; `Err(seconds to wait)` when over the limit.
    pub fn hit(&self, key: &str, now: i64) -> Result<(), i64> {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            let window = self.window_secs;
            windows.retain(|_, (start, _)| now - *start < window);
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        let entry = windows.entry(key.to_owned()).or_insert((now, 0));
        if now - entry.0 >= self.window_secs {
            *entry = (now, 0);
        }
        if entry.1 >= self.max {
            return Err(entry.0 + self.window_secs - now);
        }
        entry.1 += 1;
        Ok(())
    }
}

/// Words that hold a complaint for a moderator before it is public: abuse in
/// Korean and English, and patterns of personal data a reporter should not publish.
const FLAGGED_WORDS: &[&str] = &[
    "씨발",
    "시발",
    "개새끼",
    "병신",
    "죽여",
    "fuck",
    "shit",
    "bitch",
    "kill you",
    "idiot",
];

/// Why a text needs a moderator, if it does.
pub fn flag(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    if let Some(word) = FLAGGED_WORDS.iter().find(|w| lower.contains(*w)) {
        return Some(format!("abusive language ('{word}')"));
    }
    if looks_like_resident_number(text) {
        return Some("a resident registration number".to_owned());
    }
    None
}

/// Six digits, a dash, seven digits: a Korean resident registration number.
fn looks_like_resident_number(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(14).any(|w| {
        w[..6].iter().all(u8::is_ascii_digit)
            && w[6] == b'-'
            && w[7..].iter().all(u8::is_ascii_digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_maximum_then_refuses_until_it_ends() {
        let limit = RateLimit::new(2, 60);
        assert!(limit.hit("a", 0).is_ok());
        assert!(limit.hit("a", 1).is_ok());
        assert_eq!(limit.hit("a", 10), Err(50));
        assert!(limit.hit("b", 10).is_ok(), "keys are separate");
        assert!(limit.hit("a", 60).is_ok(), "a new window");
    }

    #[test]
    fn abuse_and_personal_numbers_are_flagged_and_plain_text_is_not() {
        assert!(flag("Fix this, you IDIOT").is_some());
        assert!(flag("이 병신 같은 도로").is_some());
        assert!(flag("my number is 900101-1234567").is_some());
        assert_eq!(flag("Pothole in front of exit 3, about 30 cm wide"), None);
    }
}
