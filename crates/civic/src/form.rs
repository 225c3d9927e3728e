//! Open311's `POST requests` form: decoding `application/x-www-form-urlencoded`
//! bodies (with `attribute[code]` and `attribute[code][]` fields) and
//! validating every field against the catalog, with a message that names it.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, Choice, Datatype, Service};
use crate::model::{AttributeValue, Filing, Reporter, iso, parse_iso};

/// Longest description Open311 allows.
pub const MAX_DESCRIPTION: usize = 4000;
/// Longest one-line value (names, addresses, string attributes).
pub const MAX_LINE: usize = 255;
/// Most fields a form may have, so a huge form cannot cost unbounded work.
pub const MAX_FIELDS: usize = 200;

/// A field that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The form field at fault, as the client named it (e.g. `attribute[lane]`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// An error naming `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A decoded form before validation: the plain fields and the attributes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawForm {
    /// Plain fields; the first value of a repeated field wins.
    pub fields: BTreeMap<String, String>,
    /// `attribute[code]` values, in order (several for `attribute[code][]`).
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl RawForm {
    /// The trimmed, non-empty value of a plain field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Decodes an urlencoded body (or query string). Never fails on content:
/// malformed percent escapes decode to replacement characters, and only
/// too many fields is refused.
pub fn decode(body: &[u8]) -> Result<RawForm, FieldError> {
    let mut form = RawForm::default();
    for (n, (key, value)) in form_urlencoded::parse(body).enumerate() {
        if n >= MAX_FIELDS {
            return Err(FieldError::new(
                "form",
                format!("more than {MAX_FIELDS} fields"),
            ));
        }
        if let Some(rest) = key.strip_prefix("attribute[") {
            // attribute[code] or attribute[code][] (PHP-style lists, as FixMyStreet sends them).
            let code = rest
                .strip_suffix("][]")
                .or_else(|| rest.strip_suffix(']'))
                .unwrap_or(rest);
            form.attributes
                .entry(code.to_owned())
                .or_default()
                .push(value.into_owned());
        } else {
            form.fields
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    Ok(form)
}

/// Whether a client's boolean is true: `true`, `1`, `yes` or `on` (clients send all of them).
pub fn truthy(text: &str) -> bool {
    matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "on"
    )
}

fn line(form: &RawForm, name: &str, max: usize) -> Result<Option<String>, FieldError> {
    match form.get(name) {
        None => Ok(None),
        Some(v) if v.chars().count() > max => Err(FieldError::new(
            name,
            format!("must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(FieldError::new(
            name,
            "must be one line without control characters",
        )),
        Some(v) => Ok(Some(v.to_owned())),
    }
}

fn coordinate(form: &RawForm, name: &str) -> Result<Option<f64>, FieldError> {
    form.get(name)
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| FieldError::new(name, format!("'{v}' is not a number")))
        })
        .transpose()
}

/// Checks a plausible email address: one `@`, a dot in the domain, no spaces.
pub fn check_email(field: &str, email: &str) -> Result<(), FieldError> {
    let ok = email.len() <= MAX_LINE
        && email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(field, "is not an email address"))
    }
}

/// Validates a decoded form against the catalog into a [`Filing`].
pub fn validate(form: &RawForm, catalog: &Catalog) -> Result<Filing, FieldError> {
    if let Some(j) = form.get("jurisdiction_id")
        && j != catalog.jurisdiction
    {
        return Err(FieldError::new(
            "jurisdiction_id",
            format!("'{j}' is not served here; use {}", catalog.jurisdiction),
        ));
    }
    let code = form
        .get("service_code")
        .ok_or_else(|| FieldError::new("service_code", "is required"))?;
    let service = catalog.service(code).ok_or_else(|| {
        FieldError::new(
            "service_code",
            format!("'{code}' is not a service; GET services.json lists them"),
        )
    })?;
    let lat = coordinate(form, "lat")?;
    let lon = coordinate(form, "long")?;
    let at = match (lat, lon) {
        (Some(lat), Some(lon)) => {
            if !catalog.covers((lat, lon)) {
                let (s, w, n, e) = catalog.bounds;
                return Err(FieldError::new(
                    if (s..=n).contains(&lat) {
                        "long"
                    } else {
                        "lat"
                    },
                    format!(
                        "({lat}, {lon}) is outside the city (latitude {s} to {n}, longitude {w} to {e})"
                    ),
                ));
            }
            Some((lat, lon))
        }
        (Some(_), None) => return Err(FieldError::new("long", "is required with lat")),
        (None, Some(_)) => return Err(FieldError::new("lat", "is required with long")),
        (None, None) => None,
    };
    let address = line(form, "address_string", MAX_LINE)?;
    let address_id = line(form, "address_id", MAX_LINE)?;
    if at.is_none() && address.is_none() && address_id.is_none() {
        return Err(FieldError::new(
            "lat",
            "a location is required: lat and long, address_string or address_id",
        ));
    }
    let description = form.get("description").unwrap_or_default().to_owned();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let media_url = line(form, "media_url", 2000)?;
    if let Some(url) = &media_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(FieldError::new(
            "media_url",
            "must be an http:// or https:// URL",
        ));
    }
    let email = line(form, "email", MAX_LINE)?;
    if let Some(email) = &email {
        check_email("email", email)?;
    }
    let first = line(form, "first_name", 100)?;
    let last = line(form, "last_name", 100)?;
    let name = match (first, last) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (f, l) => f.or(l),
    };
    let phone = line(form, "phone", 40)?;
    if let Some(p) = &phone
        && !p.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c))
    {
        return Err(FieldError::new(
            "phone",
            "may hold only digits, spaces, +, - and parentheses",
        ));
    }
    Ok(Filing {
        service_code: service.code.to_owned(),
        at,
        address,
        address_id,
        description,
        attributes: attributes(form, service, &catalog.timezone)?,
        media_url,
        reporter: Reporter {
            user_id: None,
            email,
            name,
            phone,
            anonymous: form.get("anonymous").is_some_and(truthy),
        },
    })
}

/// Checks every attribute value against the service's definition.
pub fn attributes(
    form: &RawForm,
    service: &Service,
    tz: &jiff::tz::TimeZone,
) -> Result<BTreeMap<String, AttributeValue>, FieldError> {
    let mut out = BTreeMap::new();
    for code in form.attributes.keys() {
        let known = service
            .attributes
            .iter()
            .any(|a| a.code == code && a.variable);
        if !known {
            return Err(FieldError::new(
                format!("attribute[{code}]"),
                format!(
                    "'{code}' is not a question of service {}; GET services/{}.json lists them",
                    service.code, service.code
                ),
            ));
        }
    }
    for a in service.attributes.iter().filter(|a| a.variable) {
        let field = format!("attribute[{}]", a.code);
        let values: Vec<&str> = form
            .attributes
            .get(a.code)
            .into_iter()
            .flatten()
            .flat_map(|v| {
                // A multivaluelist may also come as one comma-separated value.
                if a.datatype == Datatype::Multivaluelist {
                    v.split(',').collect::<Vec<_>>()
                } else {
                    vec![v.as_str()]
                }
            })
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            if a.required {
                return Err(FieldError::new(
                    field,
                    format!("is required: {}", a.description),
                ));
            }
            continue;
        }
        if values.len() > 1 && a.datatype != Datatype::Multivaluelist {
            return Err(FieldError::new(field, "takes one value"));
        }
        let first = values[0];
        let key_ok = |v: &str| a.values.iter().any(|c| c.key == v);
        let value = match a.datatype {
            Datatype::String | Datatype::Text => {
                let max = if a.datatype == Datatype::String {
                    MAX_LINE
                } else {
                    MAX_DESCRIPTION
                };
                if first.chars().count() > max {
                    return Err(FieldError::new(
                        field,
                        format!("must be at most {max} characters"),
                    ));
                }
                AttributeValue::One(first.to_owned())
            }
            Datatype::Number => {
                if !first.parse::<f64>().is_ok_and(f64::is_finite) {
                    return Err(FieldError::new(field, format!("'{first}' is not a number")));
                }
                AttributeValue::One(first.to_owned())
            }
            Datatype::Datetime => {
                let t = parse_iso(first).ok_or_else(|| {
                    FieldError::new(
                        field.clone(),
                        format!(
                            "'{first}' is not an ISO-8601 date and time with a zone, e.g. 2026-03-02T08:00:00+09:00"
                        ),
                    )
                })?;
                AttributeValue::One(iso(t, tz))
            }
            Datatype::Singlevaluelist => {
                if !key_ok(first) {
                    return Err(FieldError::new(field, not_a_key(first, a.values)));
                }
                AttributeValue::One(first.to_owned())
            }
            Datatype::Multivaluelist => {
                let mut keys: Vec<String> = Vec::new();
                for v in values {
                    if !key_ok(v) {
                        return Err(FieldError::new(field, not_a_key(v, a.values)));
                    }
                    if !keys.iter().any(|k| k == v) {
                        keys.push(v.to_owned());
                    }
                }
                AttributeValue::Many(keys)
            }
        };
        out.insert(a.code.to_owned(), value);
    }
    Ok(out)
}

fn not_a_key(value: &str, values: &[Choice]) -> String {
    let keys: Vec<&str> = values.iter().map(|c| c.key).collect();
    format!("'{value}' is not one of {}", keys.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn filing(body: &str) -> Result<Filing, FieldError> {
        validate(&decode(body.as_bytes())?, &Catalog::seoul())
    }

    const POTHOLE: &str = "service_code=pothole&lat=37.5665&long=126.978&attribute[lane]=bus_lane";

    #[test]
    fn a_fixmystreet_style_form_is_accepted_with_its_attributes() {
        let f = filing("api_key=k&jurisdiction_id=seoul.go.kr&service_code=streetlight&lat=37.5665&long=126.978&description=Dark+since+Monday&email=minji%40example.org&first_name=Minji&last_name=Kim&attribute[problems][]=out&attribute[problems][]=damaged&attribute[side]=left").unwrap();
        assert_eq!(f.service_code, "streetlight");
        assert_eq!(f.description, "Dark since Monday");
        assert_eq!(f.reporter.name.as_deref(), Some("Minji Kim"));
        assert_eq!(
            f.attributes["problems"],
            AttributeValue::Many(vec!["out".into(), "damaged".into()])
        );
        let comma = filing("service_code=streetlight&address_string=Sejong-daero+110&attribute[problems]=out,flicker").unwrap();
        assert_eq!(
            comma.attributes["problems"],
            AttributeValue::Many(vec!["out".into(), "flicker".into()])
        );
        assert_eq!(comma.at, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("lat=37.5&long=126.9", "service_code"),
            ("service_code=zeppelin&lat=37.5&long=126.9", "service_code"),
            ("service_code=graffiti", "lat"),
            ("service_code=graffiti&lat=abc&long=126.9", "lat"),
            ("service_code=graffiti&lat=35.1&long=129.0", "lat"),
            ("service_code=graffiti&lat=37.5&long=129.0", "long"),
            ("service_code=graffiti&lat=37.5", "long"),
            (
                "service_code=pothole&lat=37.5&long=126.9",
                "attribute[lane]",
            ),
            (
                "service_code=pothole&lat=37.5&long=126.9&attribute[lane]=sky",
                "attribute[lane]",
            ),
            (
                "service_code=pothole&lat=37.5&long=126.9&attribute[lane]=sidewalk&attribute[size_cm]=big",
                "attribute[size_cm]",
            ),
            (
                "service_code=illegal_parking&lat=37.5&long=126.9&attribute[seen_at]=yesterday",
                "attribute[seen_at]",
            ),
            (
                "service_code=graffiti&lat=37.5&long=126.9&attribute[colour]=red",
                "attribute[colour]",
            ),
            (
                "service_code=graffiti&lat=37.5&long=126.9&email=nope",
                "email",
            ),
            (
                "service_code=graffiti&lat=37.5&long=126.9&media_url=ftp://x",
                "media_url",
            ),
            (
                "service_code=graffiti&lat=37.5&long=126.9&jurisdiction_id=nyc.gov",
                "jurisdiction_id",
            ),
            (
                "service_code=graffiti&lat=37.5&long=126.9&phone=call+me",
                "phone",
            ),
        ];
        for (body, field) in cases {
            let e = filing(body).unwrap_err();
            assert_eq!(e.field, field, "{body}: {e}");
            assert!(!e.message.is_empty());
        }
        let long = format!("{POTHOLE}&description={}", "a".repeat(4001));
        assert_eq!(filing(&long).unwrap_err().field, "description");
        assert!(filing(&format!("{POTHOLE}&description={}", "가".repeat(4000))).is_ok());
    }

    #[test]
    fn datetimes_are_normalised_to_the_citys_zone() {
        let f = filing("service_code=illegal_parking&lat=37.5&long=126.9&attribute[seen_at]=2026-03-02T08:00:00Z").unwrap();
        assert_eq!(
            f.attributes["seen_at"],
            AttributeValue::One("2026-03-02T17:00:00+09:00".into())
        );
    }

    #[test]
    fn booleans_are_read_the_way_clients_write_them() {
        assert!(truthy("true") && truthy("TRUE") && truthy("1") && truthy("yes"));
        assert!(!truthy("false") && !truthy("0") && !truthy(""));
        let f = filing(&format!("{POTHOLE}&anonymous=true")).unwrap();
        assert!(f.reporter.anonymous);
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_validation_names_a_field(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(form) = decode(&body)
                && let Err(e) = validate(&form, &Catalog::seoul())
            {
                prop_assert!(!e.field.is_empty() && !e.message.is_empty());
            }
        }

        #[test]
        fn attribute_values_round_trip_through_encoding(
            size in 0.0f64..10_000.0,
            lane in prop::sample::select(vec!["sidewalk", "bus_lane", "car_lane"]),
            description in "\\PC{0,200}",
        ) {
            let body: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("service_code", "pothole")
                .append_pair("lat", "37.55")
                .append_pair("long", "126.97")
                .append_pair("attribute[size_cm]", &size.to_string())
                .append_pair("attribute[lane]", lane)
                .append_pair("description", &description)
                .finish();
            let f = filing(&body).unwrap();
            prop_assert_eq!(&f.attributes["lane"], &AttributeValue::One(lane.to_owned()));
            prop_assert_eq!(&f.attributes["size_cm"], &AttributeValue::One(size.to_string()));
            prop_assert_eq!(f.description, description.trim());
        }

        #[test]
        fn multivaluelists_keep_each_known_key_once(keys in proptest::collection::vec(prop::sample::select(vec!["out", "flicker", "day_on", "damaged"]), 1..8)) {
            let mut s = form_urlencoded::Serializer::new(String::new());
            s.append_pair("service_code", "streetlight").append_pair("address_id", "A1");
            for k in &keys {
                s.append_pair("attribute[problems][]", k);
            }
            let f = filing(&s.finish()).unwrap();
            let AttributeValue::Many(got) = &f.attributes["problems"] else { panic!() };
            let mut want: Vec<&str> = Vec::new();
            for k in &keys { if !want.contains(k) { want.push(k); } }
            prop_assert_eq!(got, &want);
        }
    }
}
