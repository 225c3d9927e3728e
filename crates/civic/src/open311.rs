//! Open311 GeoReport v2 documents, in XML (which the standard requires) and
//! JSON (which mirrors it), built from one tree so the two cannot drift.

use cityos_store::complaints::ComplaintRow;

use crate::catalog::{Catalog, Service};
use crate::model::{Status, iso};

/// The two formats of GeoReport v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.xml`
    Xml,
    /// `.json`
    Json,
}

impl Format {
    /// The format of a path's extension: `services.json` → JSON.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        let (stem, ext) = file.rsplit_once('.')?;
        let format = match ext {
            "json" => Format::Json,
            "xml" => Format::Xml,
            _ => return None,
        };
        Some((stem, format))
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "text/xml; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// A node of a GeoReport document.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// Absent value: JSON `null`, an empty XML element.
    Null,
    /// Named children, in order.
    Object(Vec<(&'static str, Node)>),
    /// A list whose XML items are elements named `item`.
    List {
        /// Element name of each item in XML.
        item: &'static str,
        /// The items.
        items: Vec<Node>,
    },
}

fn text(s: impl Into<String>) -> Node {
    Node::Text(s.into())
}

fn opt(s: Option<impl Into<String>>) -> Node {
    s.map_or(Node::Null, |s| Node::Text(s.into()))
}

impl Node {
    /// The JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Node::Text(s) => J::String(s.clone()),
            Node::Number(n) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
            Node::Int(i) => J::from(*i),
            Node::Bool(b) => J::Bool(*b),
            Node::Null => J::Null,
            Node::Object(fields) => J::Object(
                fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.to_json()))
                    .collect(),
            ),
            Node::List { items, .. } => J::Array(items.iter().map(Node::to_json).collect()),
        }
    }

    fn write_xml(&self, out: &mut String) {
        match self {
            Node::Text(s) => escape_into(s, out),
            Node::Number(n) => out.push_str(&n.to_string()),
            Node::Int(i) => out.push_str(&i.to_string()),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Null => {}
            Node::Object(fields) => {
                for (k, v) in fields {
                    element(k, v, out);
                }
            }
            Node::List { item, items } => {
                for v in items {
                    element(item, v, out);
                }
            }
        }
    }
}

fn element(name: &str, value: &Node, out: &mut String) {
    if *value == Node::Null {
        out.push('<');
        out.push_str(name);
        out.push_str("/>");
        return;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    value.write_xml(out);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

/// Renders a document whose XML root is `root`: in JSON, the root's content alone
/// (GeoReport's JSON has no root element).
pub fn render(root: &str, body: &Node, format: Format) -> String {
    match format {
        Format::Json => body.to_json().to_string(),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            element(root, body, &mut out);
            out
        }
    }
}

/// `GET services`: every service.
pub fn services(catalog: &Catalog) -> Node {
    Node::List {
        item: "service",
        items: catalog
            .services
            .iter()
            .map(|s| {
                Node::Object(vec![
                    ("service_code", text(s.code)),
                    ("service_name", text(s.name)),
                    ("description", text(s.description)),
                    ("metadata", Node::Bool(!s.attributes.is_empty())),
                    ("type", text(s.kind.as_str())),
                    ("keywords", text(s.keywords)),
                    ("group", text(s.group)),
                ])
            })
            .collect(),
    }
}

/// `GET services/{code}`: the service definition with its attributes.
pub fn service_definition(service: &Service) -> Node {
    let attributes = service
        .attributes
        .iter()
        .map(|a| {
            Node::Object(vec![
                ("variable", Node::Bool(a.variable)),
                ("code", text(a.code)),
                ("datatype", text(a.datatype.as_str())),
                ("required", Node::Bool(a.required)),
                ("datatype_description", text(a.datatype_description)),
                ("order", Node::Int(i64::from(a.order))),
                ("description", text(a.description)),
                (
                    "values",
                    Node::List {
                        item: "value",
                        items: a
                            .values
                            .iter()
                            .map(|c| {
                                Node::Object(vec![("key", text(c.key)), ("name", text(c.name))])
                            })
                            .collect(),
                    },
                ),
            ])
        })
        .collect();
    Node::Object(vec![
        ("service_code", text(service.code)),
        (
            "attributes",
            Node::List {
                item: "attribute",
                items: attributes,
            },
        ),
    ])
}

/// One complaint as a GeoReport `request`, without any personal data of its
/// reporters. `base_url` makes stored relative media links absolute.
pub fn request(c: &ComplaintRow, catalog: &Catalog, base_url: &str) -> Node {
    let status = Status::parse(&c.status).unwrap_or(Status::Received);
    let service = catalog.service(&c.service_code);
    let media = c.media_url.as_ref().map(|m| {
        if m.starts_with('/') {
            format!("{base_url}{m}")
        } else {
            m.clone()
        }
    });
    let coordinate = |e6: Option<i64>| e6.map_or(Node::Null, |v| Node::Number(v as f64 / 1e6));
    Node::Object(vec![
        ("service_request_id", text(c.id.to_string())),
        ("status", text(status.open311())),
        ("status_notes", opt(c.status_notes.clone())),
        ("service_name", opt(service.map(|s| s.name))),
        ("service_code", text(c.service_code.clone())),
        ("description", text(c.description.clone())),
        (
            "agency_responsible",
            opt(catalog.department(&c.department).map(|d| d.name)),
        ),
        ("service_notice", Node::Null),
        (
            "requested_datetime",
            text(iso(c.requested_at, &catalog.timezone)),
        ),
        (
            "updated_datetime",
            text(iso(c.updated_at, &catalog.timezone)),
        ),
        (
            "expected_datetime",
            text(iso(c.expected_at, &catalog.timezone)),
        ),
        ("address", opt(c.address.clone())),
        ("address_id", opt(c.address_id.clone())),
        ("zipcode", Node::Null),
        ("lat", coordinate(c.lat_e6)),
        ("long", coordinate(c.lon_e6)),
        ("media_url", opt(media)),
    ])
}

/// `GET requests`: a list of requests.
pub fn requests(rows: &[ComplaintRow], catalog: &Catalog, base_url: &str) -> Node {
    Node::List {
        item: "request",
        items: rows.iter().map(|c| request(c, catalog, base_url)).collect(),
    }
}

/// `POST requests`: the new id, or the token of a batch service.
pub fn created(c: &ComplaintRow, notice: Option<String>) -> Node {
    let first = match &c.token {
        Some(token) => ("token", text(token.clone())),
        None => ("service_request_id", text(c.id.to_string())),
    };
    Node::List {
        item: "request",
        items: vec![Node::Object(vec![
            first,
            ("service_notice", opt(notice)),
            ("account_id", Node::Null),
        ])],
    }
}

/// `GET tokens/{token}`: the id a token stands for.
pub fn token(c: &ComplaintRow) -> Node {
    Node::List {
        item: "request",
        items: vec![Node::Object(vec![
            ("service_request_id", text(c.id.to_string())),
            ("token", opt(c.token.clone())),
        ])],
    }
}

/// The standard error list: `[{code, description}]`.
pub fn errors(code: u16, description: &str) -> Node {
    Node::List {
        item: "error",
        items: vec![Node::Object(vec![
            ("code", Node::Int(i64::from(code))),
            ("description", text(description)),
        ])],
    }
}

/// Service discovery for a server reachable at `base_url`.
pub fn discovery(base_url: &str, changeset: &str) -> Node {
    Node::Object(vec![
        ("changeset", text(changeset)),
        ("contact", text("Seoul Dasan Call Center 120 (cityos)")),
        (
            "key_service",
            text("API keys are issued by the city's administrators"),
        ),
        (
            "endpoints",
            Node::List {
                item: "endpoint",
                items: vec![Node::Object(vec![
                    (
                        "specification",
                        text("http://wiki.open311.org/GeoReport_v2"),
                    ),
                    ("url", text(format!("{base_url}/open311/v2"))),
                    ("changeset", text(changeset)),
                    ("type", text("production")),
                    (
                        "formats",
                        Node::List {
                            item: "format",
                            items: vec![text("text/xml"), text("application/json")],
                        },
                    ),
                ])],
            },
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_and_json_carry_the_same_fields() {
        let catalog = Catalog::seoul();
        let doc = services(&catalog);
        let json = render("services", &doc, Format::Json);
        let xml = render("services", &doc, Format::Xml);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), catalog.services.len());
        assert_eq!(parsed[0]["metadata"], true);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><services><service><service_code>pothole</service_code>"));
        assert_eq!(xml.matches("<service>").count(), catalog.services.len());
    }

    #[test]
    fn text_is_escaped_in_xml() {
        let xml = render("errors", &errors(400, "a < b & \"c\"\u{1}"), Format::Xml);
        assert!(
            xml.contains("<description>a &lt; b &amp; &quot;c&quot;</description>"),
            "{xml}"
        );
        assert!(xml.contains("<code>400</code>"));
    }

    #[test]
    fn requests_never_carry_the_reporter() {
        let c = ComplaintRow {
            id: 7,
            service_code: "pothole".into(),
            status: "resolved".into(),
            reporter_email: Some("minji@example.org".into()),
            reporter_name: Some("Minji Kim".into()),
            reporter_phone: Some("010-1234-5678".into()),
            media_url: Some("/api/v1/complaints/7/photos/1".into()),
            lat_e6: Some(37_566_500),
            lon_e6: Some(126_978_000),
            department: "roads".into(),
            ..Default::default()
        };
        let json = render(
            "service_requests",
            &requests(&[c], &Catalog::seoul(), "http://h"),
            Format::Json,
        );
        for private in ["minji", "Minji", "010-"] {
            assert!(!json.contains(private), "{json}");
        }
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v[0]["status"], "closed");
        assert_eq!(v[0]["lat"], 37.5665);
        assert_eq!(v[0]["media_url"], "http://h/api/v1/complaints/7/photos/1");
        assert_eq!(v[0]["agency_responsible"], "Road Management Division");
    }
}
