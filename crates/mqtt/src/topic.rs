//! The topic scheme: the one place that says which topic carries what.
//!
//! Every device publishes to exactly one topic, built from its role and its
//! id: `cityos/v1/vehicles/{device_id}/position` for a vehicle,
//! `cityos/v1/validators/{device_id}/taps` for a card validator and
//! `cityos/v1/gateways/{device_id}/positions` for a gateway. The id is
//! one topic level, so a device id can never reach into another device's
//! topic, and the broker can check a publish by comparing two strings.

/// What a device is. The role decides the one topic the device may publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRole {
    /// A bus or train that publishes its position.
    Vehicle,
    /// A smart-card validator that publishes card taps.
    Validator,
    /// An operator's AVL system that forwards the positions of its whole
    /// fleet over one connection, each message naming its vehicles.
    Gateway,
}

impl DeviceRole {
    /// The role's name: `vehicle`, `validator` or `gateway`, as in the
    /// device's API key name `{role}:{device_id}`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceRole::Vehicle => "vehicle",
            DeviceRole::Validator => "validator",
            DeviceRole::Gateway => "gateway",
        }
    }

    /// Parses [`DeviceRole::as_str`].
    pub fn parse(name: &str) -> Option<DeviceRole> {
        ROLES.into_iter().find(|r| r.as_str() == name)
    }
}

/// The topic filters the server's ingest subscriber uses, one per role.
pub const INGEST_FILTERS: [&str; 3] = [
    "cityos/v1/vehicles/+/position",
    "cityos/v1/validators/+/taps",
    "cityos/v1/gateways/+/positions",
];

/// The longest device id, in bytes. It keeps topics and client ids short
/// enough for every broker.
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// Topic prefix and suffix of each role; `device_topic`, `parse_device_topic`
/// and `INGEST_FILTERS` all follow this table.
const fn parts(role: DeviceRole) -> (&'static str, &'static str) {
    match role {
        DeviceRole::Vehicle => ("cityos/v1/vehicles/", "/position"),
        DeviceRole::Validator => ("cityos/v1/validators/", "/taps"),
        DeviceRole::Gateway => ("cityos/v1/gateways/", "/positions"),
    }
}

const ROLES: [DeviceRole; 3] = [
    DeviceRole::Vehicle,
    DeviceRole::Validator,
    DeviceRole::Gateway,
];

/// Whether `id` can be a device id: 1 to [`MAX_DEVICE_ID_LEN`] ASCII
/// letters, digits, `.`, `_` or `-`.
///
/// This excludes `/`, `+`, `#` and `$`, so an id is always exactly one
/// plain topic level and never a wildcard.
pub fn is_valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The topic a device of `role` with id `device_id` publishes to, or `None`
/// when `device_id` is not a valid device id.
pub fn device_topic(role: DeviceRole, device_id: &str) -> Option<String> {
    if !is_valid_device_id(device_id) {
        return None;
    }
    let (prefix, suffix) = parts(role);
    Some(format!("{prefix}{device_id}{suffix}"))
}

/// The topic where the server answers a validator's taps
/// (`cityos/v1/validators/{device_id}/answers`): the one topic a validator
/// may subscribe to, and only its own.
pub fn answer_topic(device_id: &str) -> Option<String> {
    is_valid_device_id(device_id).then(|| format!("cityos/v1/validators/{device_id}/answers"))
}

/// The validator an answer topic belongs to, if `topic` is one.
pub fn parse_answer_topic(topic: &str) -> Option<&str> {
    let id = topic
        .strip_prefix("cityos/v1/validators/")?
        .strip_suffix("/answers")?;
    is_valid_device_id(id).then_some(id)
}

/// The role and device id a topic belongs to, or `None` when the topic is not
/// a device topic of this scheme or its device id is invalid.
pub fn parse_device_topic(topic: &str) -> Option<(DeviceRole, &str)> {
    ROLES.into_iter().find_map(|role| {
        let (prefix, suffix) = parts(role);
        let id = topic.strip_prefix(prefix)?.strip_suffix(suffix)?;
        is_valid_device_id(id).then_some((role, id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_topics_round_trip_and_refuse_wildcards() {
        let topic = answer_topic("gate-ST001").unwrap();
        assert_eq!(parse_answer_topic(&topic), Some("gate-ST001"));
        assert_eq!(answer_topic("a/b"), None);
        assert_eq!(parse_answer_topic("cityos/v1/validators/+/answers"), None);
        assert_eq!(
            parse_device_topic(&topic),
            None,
            "an answer topic is not a device topic"
        );
    }

    #[test]
    fn topics_round_trip() {
        for role in ROLES {
            let topic = device_topic(role, "bus-7401.A_1").unwrap();
            assert_eq!(parse_device_topic(&topic), Some((role, "bus-7401.A_1")));
        }
        assert_eq!(
            device_topic(DeviceRole::Vehicle, "v1").as_deref(),
            Some("cityos/v1/vehicles/v1/position")
        );
    }

    #[test]
    fn filters_match_the_table() {
        for (role, filter) in ROLES.into_iter().zip(INGEST_FILTERS) {
            let (prefix, suffix) = parts(role);
            assert_eq!(filter, format!("{prefix}+{suffix}"));
        }
    }

    #[test]
    fn bad_ids_and_topics_are_refused() {
        for id in ["", "a/b", "+", "#", "$SYS", "a b", "버스", &"x".repeat(65)] {
            assert!(!is_valid_device_id(id), "{id:?}");
            assert_eq!(device_topic(DeviceRole::Vehicle, id), None);
        }
        for topic in [
            "cityos/v1/vehicles//position",
            "cityos/v1/vehicles/a/b/position",
            "cityos/v1/vehicles/a/taps",
            "cityos/v1/validators/a/position",
            "cityos/v2/vehicles/a/position",
            "cityos/v1/vehicles/a/position/",
            "",
        ] {
            assert_eq!(parse_device_topic(topic), None, "{topic:?}");
        }
    }
}
