//! What a city accepts complaints about and who answers them: services with
//! their Open311 attributes and deadlines, departments, district offices
//! (polygons) and the routing rules between them.
//!
//! [`Catalog::seoul`] is built in: Seoul's most common field complaints, a
//! few city departments, and district offices drawn as simplified polygons
//! around the city's centre.

use serde::Serialize;

use crate::geo::{Point, contains};

/// How an attribute's value is entered and checked (Open311's `datatype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    /// One line of text, at most 255 characters.
    String,
    /// A decimal number.
    Number,
    /// An ISO-8601 date and time with its zone.
    Datetime,
    /// Free text, at most 4,000 characters.
    Text,
    /// One key of `values`.
    Singlevaluelist,
    /// Any number of keys of `values`.
    Multivaluelist,
}

impl Datatype {
    /// The name Open311 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }
}

/// One extra question a service asks (an Open311 attribute).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribute {
    /// False for text shown to the reporter without asking anything.
    pub variable: bool,
    /// Unique within the service; the form field is `attribute[code]`.
    pub code: &'static str,
    /// How the value is checked.
    pub datatype: Datatype,
    /// Whether a filing without it is refused.
    pub required: bool,
    /// Help on the expected format.
    pub datatype_description: &'static str,
    /// Position in the form, from 1.
    pub order: u32,
    /// The question, in English (Open311's `description`).
    pub description: &'static str,
    /// The question in Korean.
    pub description_ko: &'static str,
    /// The choices of list datatypes.
    pub values: &'static [Choice],
}

/// One choice of a list attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Choice {
    /// What is stored and sent (Open311's `key`).
    pub key: &'static str,
    /// Shown in English (Open311's `name`).
    pub name: &'static str,
    /// Shown in Korean.
    pub name_ko: &'static str,
}

const fn choice(key: &'static str, name: &'static str, name_ko: &'static str) -> Choice {
    Choice { key, name, name_ko }
}

/// By when a complaint of a service must be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Deadline {
    /// Within this many hours of filing (Seoul's field complaints: 24).
    Hours {
        /// Hours allowed.
        hours: u32,
    },
    /// The same day when filed before `cutoff_hour` (local time), else by the end of the next day.
    SameDay {
        /// Local hour, 0–23.
        cutoff_hour: u8,
    },
}

/// Whether a filing is answered with its id at once or with a token (Open311's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    /// The id is returned at once.
    Realtime,
    /// A token is returned; the id is looked up with it.
    Batch,
}

impl ServiceType {
    /// The name Open311 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Realtime => "realtime",
            ServiceType::Batch => "batch",
        }
    }
}

/// A kind of complaint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// Open311 `service_code`.
    pub code: &'static str,
    /// Name in English.
    pub name: &'static str,
    /// Name in Korean.
    pub name_ko: &'static str,
    /// What it is for.
    pub description: &'static str,
    /// Open311 `group`.
    pub group: &'static str,
    /// Comma-separated search words.
    pub keywords: &'static str,
    /// Realtime or batch.
    pub kind: ServiceType,
    /// Extra questions; Open311's `metadata` is true when there are any.
    pub attributes: Vec<Attribute>,
    /// Resolution deadline.
    pub deadline: Deadline,
    /// The department that answers it unless a rule says otherwise.
    pub department: &'static str,
}

/// A city department or district office that answers complaints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Department {
    /// Stable code, stored on each complaint.
    pub code: &'static str,
    /// Name in English.
    pub name: &'static str,
    /// Name in Korean.
    pub name_ko: &'static str,
}

/// A district (gu) with its boundary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct District {
    /// Stable code, stored on each complaint.
    pub code: &'static str,
    /// Name in English.
    pub name: &'static str,
    /// Name in Korean.
    pub name_ko: &'static str,
    /// Outer ring, `(lat, lon)`, not closed.
    pub polygon: Vec<Point>,
    /// The district office's department code.
    pub office: &'static str,
}

/// Sends complaints of a service (or any, `None`) in a district (or any) to a department.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingRule {
    /// Service code, or every service.
    pub service: Option<&'static str>,
    /// District code, or everywhere.
    pub district: Option<&'static str>,
    /// The department that gets them.
    pub department: &'static str,
}

/// Everything the desk needs to know about a city.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Open311 `jurisdiction_id`.
    pub jurisdiction: &'static str,
    /// Services, in the order listed.
    pub services: Vec<Service>,
    /// Departments and district offices.
    pub departments: Vec<Department>,
    /// Districts.
    pub districts: Vec<District>,
    /// First matching rule wins; otherwise the service's own department.
    pub rules: Vec<RoutingRule>,
    /// The city's bounding box `(south, west, north, east)`: filings outside are refused.
    pub bounds: (f64, f64, f64, f64),
    /// The city's time zone, for deadlines and Open311 times.
    pub timezone: jiff::tz::TimeZone,
}

/// Where a complaint goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Department code.
    pub department: &'static str,
    /// District code, when the location is inside one.
    pub district: Option<&'static str>,
}

impl Catalog {
    /// The service with `code`.
    pub fn service(&self, code: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.code == code)
    }

    /// The department with `code`.
    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.code == code)
    }

    /// The district containing `at`.
    pub fn district_at(&self, at: Point) -> Option<&District> {
        self.districts.iter().find(|d| contains(&d.polygon, at))
    }

    /// Whether `at` is inside the city's bounds.
    pub fn covers(&self, at: Point) -> bool {
        let (s, w, n, e) = self.bounds;
        (s..=n).contains(&at.0) && (w..=e).contains(&at.1)
    }

    /// The department and district for a complaint of `service` at `at`.
    pub fn route(&self, service: &Service, at: Option<Point>) -> Route {
        let district = at.and_then(|p| self.district_at(p)).map(|d| d.code);
        let department = self
            .rules
            .iter()
            .find(|r| {
                r.service.is_none_or(|s| s == service.code)
                    && r.district.is_none_or(|d| Some(d) == district)
            })
            .map_or(service.department, |r| r.department);
        Route {
            department,
            district,
        }
    }

    /// Seoul: common field complaints, city departments and district offices.
    pub fn seoul() -> Catalog {
        seoul()
    }
}

const LANES: &[Choice] = &[
    choice("sidewalk", "Sidewalk", "보도"),
    choice("bus_lane", "Bus lane", "버스전용차로"),
    choice("car_lane", "Car lane", "차로"),
];
const LAMP_PROBLEMS: &[Choice] = &[
    choice("out", "Light is out", "불이 꺼짐"),
    choice("flicker", "Flickering", "깜빡임"),
    choice("day_on", "On during the day", "낮에도 켜져 있음"),
    choice("damaged", "Post damaged", "기둥 파손"),
];
const SIDES: &[Choice] = &[
    choice("left", "Left side", "왼쪽"),
    choice("right", "Right side", "오른쪽"),
];

fn seoul() -> Catalog {
    let services = vec![
        Service {
            code: "pothole",
            name: "Pothole or road damage",
            name_ko: "도로 파손(포트홀)",
            description: "A hole or crack in a road or pavement.",
            group: "roads",
            keywords: "road,pothole,crack,pavement",
            kind: ServiceType::Realtime,
            attributes: vec![
                Attribute {
                    variable: true,
                    code: "size_cm",
                    datatype: Datatype::Number,
                    required: false,
                    datatype_description: "Width in centimetres, e.g. 30",
                    order: 1,
                    description: "How wide is the hole?",
                    description_ko: "구멍의 폭은 얼마인가요?",
                    values: &[],
                },
                Attribute {
                    variable: true,
                    code: "lane",
                    datatype: Datatype::Singlevaluelist,
                    required: true,
                    datatype_description: "One of the listed lanes",
                    order: 2,
                    description: "Where on the road is it?",
                    description_ko: "도로의 어디에 있나요?",
                    values: LANES,
                },
            ],
            deadline: Deadline::Hours { hours: 24 },
            department: "roads",
        },
        Service {
            code: "illegal_parking",
            name: "Illegal parking",
            name_ko: "불법 주정차",
            description: "A vehicle parked where it must not be.",
            group: "traffic",
            keywords: "parking,car,vehicle",
            kind: ServiceType::Realtime,
            attributes: vec![
                Attribute {
                    variable: true,
                    code: "plate",
                    datatype: Datatype::String,
                    required: false,
                    datatype_description: "As written on the plate, e.g. 12가3456",
                    order: 1,
                    description: "Licence plate",
                    description_ko: "차량 번호",
                    values: &[],
                },
                Attribute {
                    variable: true,
                    code: "seen_at",
                    datatype: Datatype::Datetime,
                    required: true,
                    datatype_description: "ISO-8601 with a zone, e.g. 2026-03-02T08:00:00+09:00",
                    order: 2,
                    description: "When did you see it?",
                    description_ko: "언제 보셨나요?",
                    values: &[],
                },
            ],
            deadline: Deadline::SameDay { cutoff_hour: 18 },
            department: "traffic",
        },
        Service {
            code: "streetlight",
            name: "Broken streetlight",
            name_ko: "가로등 고장",
            description: "A streetlight that is out, flickering or damaged.",
            group: "lighting",
            keywords: "light,lamp,dark",
            kind: ServiceType::Realtime,
            attributes: vec![
                Attribute {
                    variable: false,
                    code: "safety_note",
                    datatype: Datatype::Text,
                    required: false,
                    datatype_description: "",
                    order: 1,
                    description: "Do not touch fallen lamp posts or cables; call 119 if wires are exposed.",
                    description_ko: "쓰러진 가로등이나 전선을 만지지 마세요. 전선이 드러나 있으면 119에 전화하세요.",
                    values: &[],
                },
                Attribute {
                    variable: true,
                    code: "problems",
                    datatype: Datatype::Multivaluelist,
                    required: true,
                    datatype_description: "One or more of the listed problems",
                    order: 2,
                    description: "What is wrong with it?",
                    description_ko: "어떤 문제가 있나요?",
                    values: LAMP_PROBLEMS,
                },
                Attribute {
                    variable: true,
                    code: "side",
                    datatype: Datatype::Singlevaluelist,
                    required: false,
                    datatype_description: "Facing the road number plate",
                    order: 3,
                    description: "Which side of the street?",
                    description_ko: "길의 어느 쪽인가요?",
                    values: SIDES,
                },
            ],
            deadline: Deadline::Hours { hours: 24 },
            department: "lighting",
        },
        Service {
            code: "trash",
            name: "Illegal dumping or uncollected rubbish",
            name_ko: "쓰레기 무단투기",
            description: "Rubbish left on the street or not collected.",
            group: "sanitation",
            keywords: "rubbish,garbage,dumping,trash",
            kind: ServiceType::Realtime,
            attributes: vec![Attribute {
                variable: true,
                code: "details",
                datatype: Datatype::Text,
                required: false,
                datatype_description: "Up to 4,000 characters",
                order: 1,
                description: "What was dumped, and how much?",
                description_ko: "무엇이 얼마나 버려져 있나요?",
                values: &[],
            }],
            deadline: Deadline::SameDay { cutoff_hour: 18 },
            department: "sanitation",
        },
        Service {
            code: "graffiti",
            name: "Graffiti",
            name_ko: "낙서",
            description: "Graffiti on public property.",
            group: "sanitation",
            keywords: "graffiti,paint,vandalism",
            kind: ServiceType::Realtime,
            attributes: vec![],
            deadline: Deadline::Hours { hours: 72 },
            department: "sanitation",
        },
        Service {
            code: "noise",
            name: "Noise",
            name_ko: "소음",
            description: "Construction or other noise; answered in batches by the environment office.",
            group: "environment",
            keywords: "noise,construction,loud",
            kind: ServiceType::Batch,
            attributes: vec![],
            deadline: Deadline::Hours { hours: 48 },
            department: "environment",
        },
    ];
    let departments = vec![
        dept("roads", "Road Management Division", "도로관리과"),
        dept("traffic", "Parking Enforcement Division", "주차단속과"),
        dept("lighting", "Streetlight Division", "가로등관리과"),
        dept("sanitation", "Cleaning Division", "청소행정과"),
        dept("environment", "Environment Division", "환경정책과"),
        dept("jongno_office", "Jongno-gu Office", "종로구청"),
        dept("jung_office", "Jung-gu Office", "중구청"),
        dept("yongsan_office", "Yongsan-gu Office", "용산구청"),
        dept("mapo_office", "Mapo-gu Office", "마포구청"),
    ];
    // Simplified boundaries around City Hall (37.5665, 126.9780): each a quadrilateral.
    let districts = vec![
        district(
            "jongno",
            "Jongno-gu",
            "종로구",
            "jongno_office",
            (37.5665, 126.94, 37.64, 127.03),
        ),
        district(
            "jung",
            "Jung-gu",
            "중구",
            "jung_office",
            (37.54, 126.965, 37.5665, 127.03),
        ),
        district(
            "yongsan",
            "Yongsan-gu",
            "용산구",
            "yongsan_office",
            (37.50, 126.94, 37.54, 127.03),
        ),
        district(
            "mapo",
            "Mapo-gu",
            "마포구",
            "mapo_office",
            (37.50, 126.85, 37.5665, 126.965),
        ),
    ];
    // Seoul hands small field complaints to the district offices and keeps the rest.
    let rules = vec![
        RoutingRule {
            service: Some("trash"),
            district: Some("jongno"),
            department: "jongno_office",
        },
        RoutingRule {
            service: Some("trash"),
            district: Some("jung"),
            department: "jung_office",
        },
        RoutingRule {
            service: Some("trash"),
            district: Some("yongsan"),
            department: "yongsan_office",
        },
        RoutingRule {
            service: Some("trash"),
            district: Some("mapo"),
            department: "mapo_office",
        },
        RoutingRule {
            service: Some("illegal_parking"),
            district: Some("mapo"),
            department: "mapo_office",
        },
    ];
    Catalog {
        jurisdiction: "seoul.go.kr",
        services,
        departments,
        districts,
        rules,
        bounds: (37.40, 126.70, 37.72, 127.20),
        timezone: jiff::tz::TimeZone::get("Asia/Seoul").unwrap_or(jiff::tz::TimeZone::UTC),
    }
}

fn dept(code: &'static str, name: &'static str, name_ko: &'static str) -> Department {
    Department {
        code,
        name,
        name_ko,
    }
}

fn district(
    code: &'static str,
    name: &'static str,
    name_ko: &'static str,
    office: &'static str,
    (s, w, n, e): (f64, f64, f64, f64),
) -> District {
    District {
        code,
        name,
        name_ko,
        polygon: vec![(s, w), (s, e), (n, e), (n, w)],
        office,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_go_to_the_district_office_by_rule_else_to_the_services_department() {
        let c = Catalog::seoul();
        let trash = c.service("trash").unwrap();
        let city_hall = (37.5660, 126.9784);
        assert_eq!(
            c.route(trash, Some(city_hall)),
            Route {
                department: "jung_office",
                district: Some("jung")
            }
        );
        let pothole = c.service("pothole").unwrap();
        assert_eq!(c.route(pothole, Some(city_hall)).department, "roads");
        assert_eq!(
            c.route(trash, None),
            Route {
                department: "sanitation",
                district: None
            }
        );
        assert!(c.covers(city_hall));
        assert!(!c.covers((35.1, 129.0)), "Busan is not Seoul");
    }

    #[test]
    fn every_open311_datatype_is_offered_by_some_service() {
        let c = Catalog::seoul();
        for dt in [
            Datatype::String,
            Datatype::Number,
            Datatype::Datetime,
            Datatype::Text,
            Datatype::Singlevaluelist,
            Datatype::Multivaluelist,
        ] {
            assert!(
                c.services
                    .iter()
                    .flat_map(|s| &s.attributes)
                    .any(|a| a.datatype == dt),
                "{dt:?}"
            );
        }
        for s in &c.services {
            assert!(c.department(s.department).is_some(), "{}", s.code);
        }
    }

    /// The citizen page speaks Korean first: every question and choice a
    /// reporter reads has its Korean text, and no Korean text is the English one.
    #[test]
    fn every_question_and_choice_reads_in_korean() {
        let hangul = |t: &str| t.chars().any(|c| ('가'..='힣').contains(&c));
        for a in Catalog::seoul().services.iter().flat_map(|s| &s.attributes) {
            assert!(hangul(a.description_ko), "{}: {}", a.code, a.description_ko);
            for c in a.values {
                assert!(hangul(c.name_ko), "{}.{}: {}", a.code, c.key, c.name_ko);
                assert!(!hangul(c.name), "{}.{}: {}", a.code, c.key, c.name);
            }
        }
    }
}
