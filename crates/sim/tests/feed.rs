//! End-to-end checks of generated feeds: determinism, GTFS validity (every
//! reference resolves, ids are unique, times are monotone) and the Seoul
//! flavour a user relies on (loops, night buses, transfer stations, peaks).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use cityos_sim::{CityOptions, CitySize, CitySummary, GenerateError, generate_city};

const FILES: [&str; 10] = [
    "agency.txt",
    "stops.txt",
    "routes.txt",
    "trips.txt",
    "stop_times.txt",
    "calendar.txt",
    "calendar_dates.txt",
    "shapes.txt",
    "transfers.txt",
    "feed_info.txt",
];

/// A CSV file as header-indexed rows.
struct Table {
    name: String,
    cols: HashMap<String, usize>,
    rows: Vec<csv::StringRecord>,
}

impl Table {
    fn read(dir: &Path, name: &str) -> Table {
        let mut r = csv::Reader::from_path(dir.join(name)).expect(name);
        let cols = r
            .headers()
            .expect(name)
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_owned(), i))
            .collect();
        let rows = r.records().collect::<Result<Vec<_>, _>>().expect(name);
        Table {
            name: name.to_owned(),
            cols,
            rows,
        }
    }

    /// Column `col` of every row.
    fn col<'a>(&'a self, col: &str) -> impl Iterator<Item = &'a str> + 'a {
        let i = self.idx(col);
        self.rows.iter().map(move |r| &r[i])
    }

    fn idx(&self, col: &str) -> usize {
        *self
            .cols
            .get(col)
            .unwrap_or_else(|| panic!("{} has no column {col}", self.name))
    }

    fn ids_unique(&self, col: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        for v in self.col(col) {
            assert!(!v.is_empty(), "{}: empty {col}", self.name);
            assert!(
                seen.insert(v.to_owned()),
                "{}: duplicate {col} {v}",
                self.name
            );
        }
        seen
    }
}

/// Seconds of a GTFS `H:MM:SS` / `HH:MM:SS` time; panics on anything else.
fn secs(t: &str) -> u32 {
    let p: Vec<&str> = t.split(':').collect();
    assert!(
        p.len() == 3 && p[0].len() >= 2 && p[1].len() == 2 && p[2].len() == 2,
        "bad time {t}"
    );
    let n = |s: &str| s.parse::<u32>().unwrap_or_else(|_| panic!("bad time {t}"));
    assert!(n(p[1]) < 60 && n(p[2]) < 60, "bad time {t}");
    n(p[0]) * 3600 + n(p[1]) * 60 + n(p[2])
}

fn generate(opts: &CityOptions) -> (tempfile::TempDir, CitySummary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = generate_city(opts, dir.path()).expect("generate");
    (dir, summary)
}

/// Everything a GTFS consumer relies on; returns the tables for more checks.
fn check_feed(dir: &Path, summary: &CitySummary) -> BTreeMap<&'static str, Table> {
    let t: BTreeMap<&str, Table> = FILES.iter().map(|f| (*f, Table::read(dir, f))).collect();

    // agency.txt
    let agencies = t["agency.txt"].ids_unique("agency_id");
    assert!(
        t["agency.txt"]
            .col("agency_timezone")
            .all(|z| z == "Asia/Seoul")
    );
    assert!(t["agency.txt"].col("agency_lang").all(|l| l == "ko"));

    // stops.txt: unique ids, parents are stations, all near Seoul.
    let stops = &t["stops.txt"];
    stops.ids_unique("stop_id");
    assert_eq!(stops.rows.len(), summary.stops);
    let kind_of: HashMap<&str, &str> = stops
        .col("stop_id")
        .zip(stops.col("location_type"))
        .collect();
    let parent_of: HashMap<&str, &str> = stops
        .col("stop_id")
        .zip(stops.col("parent_station"))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    for (stop, parent) in &parent_of {
        assert_eq!(
            kind_of[stop], "0",
            "{stop} has a parent but is not a platform"
        );
        assert_eq!(
            kind_of.get(parent),
            Some(&"1"),
            "{stop}: parent {parent} is no station"
        );
    }
    for (lat, lon) in stops.col("stop_lat").zip(stops.col("stop_lon")) {
        let (lat, lon): (f64, f64) = (lat.parse().expect("lat"), lon.parse().expect("lon"));
        assert!(
            (lat - 37.5665).abs() < 0.2 && (lon - 126.978).abs() < 0.25,
            "{lat},{lon}"
        );
    }
    let bus_names: Vec<&str> = stops
        .col("stop_name")
        .zip(stops.col("location_type").zip(stops.col("parent_station")))
        .filter(|(_, (k, p))| *k == "0" && p.is_empty())
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        bus_names.iter().collect::<HashSet<_>>().len(),
        bus_names.len(),
        "bus stop names are unique"
    );
    assert!(
        bus_names
            .iter()
            .all(|n| n.contains(" (") && n.ends_with(')'))
    );
    assert!(
        bus_names.iter().any(|n| n.contains(',')),
        "some names have commas, to exercise quoting"
    );

    // routes.txt: kinds, numbers and colours as in Seoul.
    let routes = &t["routes.txt"];
    routes.ids_unique("route_id");
    assert_eq!(routes.rows.len(), summary.routes);
    let mut kind: HashMap<String, String> = HashMap::new();
    for r in &routes.rows {
        let get = |c: &str| &r[routes.idx(c)];
        assert!(agencies.contains(get("agency_id")));
        let (short, desc, color) = (
            get("route_short_name"),
            get("route_desc"),
            get("route_color"),
        );
        let digits = |n: usize| short.len() == n && short.bytes().all(|b| b.is_ascii_digit());
        let (rtype, col, ok) = match desc {
            "trunk" => ("3", "3C5AA6", digits(3)),
            "branch" => ("3", "5BB025", digits(4)),
            "circular" => ("3", "F2B70A", digits(2)),
            "night" => ("3", "1B2C5A", short.starts_with('N')),
            "subway" => (
                "1",
                color,
                get("route_long_name") == format!("{short}호선 Line {short}"),
            ),
            other => panic!("unknown route_desc {other}"),
        };
        assert_eq!(get("route_type"), rtype, "{short}");
        assert_eq!(color, col, "{short}");
        assert!(ok, "{desc} route numbered {short}");
        kind.insert(get("route_id").to_owned(), desc.to_owned());
    }
    let subway_colors: HashMap<&str, &str> = routes
        .col("route_short_name")
        .zip(routes.col("route_color"))
        .zip(routes.col("route_desc"))
        .filter(|(_, d)| *d == "subway")
        .map(|(sc, _)| sc)
        .collect();
    assert_eq!(subway_colors.get("2"), Some(&"00A84D"));
    assert_eq!(subway_colors.get("1"), Some(&"0052A4"));
    for k in ["trunk", "branch", "circular", "night", "subway"] {
        assert!(kind.values().any(|v| v == k), "no {k} route");
    }

    // calendar.txt and calendar_dates.txt
    let services = t["calendar.txt"].ids_unique("service_id");
    for d in t["calendar.txt"]
        .col("start_date")
        .chain(t["calendar.txt"].col("end_date"))
    {
        assert!(d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()), "{d}");
    }
    for s in t["calendar_dates.txt"].col("service_id") {
        assert!(services.contains(s), "calendar_dates: unknown service {s}");
    }

    // shapes.txt: increasing sequence and distance per shape.
    let shapes = &t["shapes.txt"];
    let mut shape_len: HashMap<String, f64> = HashMap::new();
    let mut last: Option<(String, u32, f64)> = None;
    for r in &shapes.rows {
        let (id, seq, d) = (
            r[shapes.idx("shape_id")].to_owned(),
            r[shapes.idx("shape_pt_sequence")]
                .parse::<u32>()
                .expect("seq"),
            r[shapes.idx("shape_dist_traveled")]
                .parse::<f64>()
                .expect("dist"),
        );
        if let Some((lid, lseq, ld)) = &last
            && *lid == id
        {
            assert!(seq > *lseq && d >= *ld, "shape {id} goes backwards");
        } else {
            assert!(!shape_len.contains_key(&id), "shape {id} is split");
        }
        shape_len.insert(id.clone(), d);
        last = Some((id, seq, d));
    }
    assert_eq!(shape_len.len(), summary.shapes);

    // trips.txt: every reference resolves.
    let trips = &t["trips.txt"];
    trips.ids_unique("trip_id");
    assert_eq!(trips.rows.len(), summary.trips);
    let mut trip_route = HashMap::new();
    let mut trip_shape = HashMap::new();
    // (subway?) → [trips not step-free, step-free].
    let mut step_free: HashMap<bool, [usize; 2]> = HashMap::new();
    for r in &trips.rows {
        let get = |c: &str| &r[trips.idx(c)];
        assert!(kind.contains_key(get("route_id")));
        assert!(services.contains(get("service_id")));
        assert!(shape_len.contains_key(get("shape_id")));
        assert!(matches!(get("direction_id"), "0" | "1"));
        assert!(!get("block_id").is_empty() && !get("trip_headsign").is_empty());
        // Every train takes a wheelchair; buses say which do.
        let wheelchair = get("wheelchair_accessible");
        assert!(matches!(wheelchair, "1" | "2"), "{wheelchair}");
        let counts = step_free
            .entry(kind[get("route_id")].as_str() == "subway")
            .or_insert([0, 0]);
        counts[usize::from(wheelchair == "1")] += 1;
        trip_route.insert(get("trip_id").to_owned(), get("route_id").to_owned());
        trip_shape.insert(get("trip_id").to_owned(), get("shape_id").to_owned());
    }

    assert_eq!(step_free[&true][0], 0, "every train is step-free");
    let [steps, low_floor] = step_free[&false];
    assert!(
        low_floor > steps && steps > 0,
        "{low_floor} low-floor bus trips, {steps} not"
    );

    // stop_times.txt: contiguous per trip, monotone, on platforms or stops.
    let st = &t["stop_times.txt"];
    assert_eq!(st.rows.len() as u64, summary.stop_times);
    let idx = [
        "trip_id",
        "arrival_time",
        "departure_time",
        "stop_id",
        "stop_sequence",
        "shape_dist_traveled",
    ]
    .map(|c| st.idx(c));
    let mut done: HashSet<&str> = HashSet::new();
    let mut cur: Option<&str> = None;
    let mut prev = (0u32, 0u32, 0.0f64);
    let mut trip_stops: Vec<&str> = Vec::new();
    let mut route_stops: HashMap<String, HashSet<String>> = HashMap::new();
    let mut min_time: HashMap<String, u32> = HashMap::new();
    let mut max_time: HashMap<String, u32> = HashMap::new();
    let mut trip_span: HashMap<String, (u32, u32)> = HashMap::new();
    let mut finish_trip = |trip: &str, stops: &Vec<&str>| {
        let route = &trip_route[trip];
        assert!(stops.len() >= 2, "{trip} has {} stops", stops.len());
        let is_loop = kind[route] == "circular" || route == "L2";
        assert_eq!(
            is_loop,
            stops[0] == stops[stops.len() - 1],
            "{trip}: loops end where they start"
        );
        route_stops
            .entry(route.clone())
            .or_default()
            .extend(stops.iter().map(|s| (*s).to_owned()));
    };
    for r in &st.rows {
        let trip = &r[idx[0]];
        let (arr, dep) = (secs(&r[idx[1]]), secs(&r[idx[2]]));
        let stop = &r[idx[3]];
        let seq: u32 = r[idx[4]].parse().expect("stop_sequence");
        let dist: f64 = r[idx[5]].parse().expect("shape_dist_traveled");
        assert_eq!(
            kind_of.get(stop),
            Some(&"0"),
            "{trip}: {stop} is not a stop"
        );
        assert!(arr <= dep, "{trip}: departs before it arrives at {stop}");
        let route = &trip_route[trip];
        if cur == Some(trip) {
            assert!(seq > prev.0, "{trip}: stop_sequence not increasing");
            assert!(
                arr >= prev.1,
                "{trip}: arrives at {stop} before leaving the previous stop"
            );
            assert!(dist >= prev.2, "{trip}: shape_dist_traveled goes back");
            trip_stops.push(stop);
        } else {
            if let Some(c) = cur {
                finish_trip(c, &trip_stops);
            }
            assert!(done.insert(trip), "{trip}: stop_times not contiguous");
            assert!(trip_route.contains_key(trip), "unknown trip {trip}");
            trip_stops.clear();
            trip_stops.push(stop);
            cur = Some(trip);
            trip_span.insert(trip.to_owned(), (arr, arr));
        }
        assert!(
            dist <= shape_len[&trip_shape[trip]] + 0.5,
            "{trip}: beyond its shape"
        );
        prev = (seq, dep, dist);
        trip_span.get_mut(trip).expect("span").1 = dep;
        let m = min_time.entry(route.clone()).or_insert(u32::MAX);
        *m = (*m).min(arr);
        let m = max_time.entry(route.clone()).or_insert(0);
        *m = (*m).max(dep);
    }
    if let Some(c) = cur {
        finish_trip(c, &trip_stops);
    }
    assert_eq!(done.len(), trips.rows.len(), "every trip has stop_times");

    // Service hours: the subway from ~05:30 and day buses from ~04:00 to
    // past midnight, night buses from 23:30 until the day buses start.
    let first_day_bus = kind
        .iter()
        .filter(|(_, k)| !matches!(k.as_str(), "night" | "subway"))
        .map(|(route, _)| min_time[route])
        .min()
        .expect("day buses");
    for (route, k) in &kind {
        let (lo, hi) = (min_time[route], max_time[route]);
        if k == "night" {
            assert!(
                lo >= secs("23:30:00") && hi >= secs("24:00:00") && hi <= secs("30:00:00"),
                "night route {route} runs {lo}..{hi}"
            );
            assert!(
                hi >= first_day_bus + 24 * 3600,
                "night route {route} stops at {hi}, before the first day bus at {first_day_bus}"
            );
        } else {
            let (earliest, latest) = if k == "subway" {
                ("05:30:00", "06:00:00")
            } else {
                ("04:00:00", "04:30:00")
            };
            assert!(
                lo >= secs(earliest) && lo <= secs(latest),
                "{route} starts {lo}"
            );
            assert!(
                hi >= secs("23:30:00") && hi <= secs("26:00:00"),
                "{route} ends {hi}"
            );
        }
    }

    // Blocks: one route and service each; a vehicle's trips do not overlap.
    let mut blocks: HashMap<&str, Vec<(u32, u32, &str, &str)>> = HashMap::new();
    for r in &trips.rows {
        let id = &r[trips.idx("trip_id")];
        let (a, b) = trip_span[id];
        blocks.entry(&r[trips.idx("block_id")]).or_default().push((
            a,
            b,
            &r[trips.idx("route_id")],
            &r[trips.idx("service_id")],
        ));
    }
    assert!(
        blocks.values().any(|v| v.len() > 1),
        "vehicles run several trips"
    );
    for (block, v) in &mut blocks {
        v.sort();
        for w in v.windows(2) {
            assert!(
                w[0].2 == w[1].2 && w[0].3 == w[1].3,
                "{block} mixes routes or services"
            );
            assert!(w[0].1 <= w[1].0, "{block}: overlapping trips");
        }
    }

    // Transfer stations: a station with several platforms serves several
    // lines, and transfers.txt links them all.
    let mut platforms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (stop, parent) in &parent_of {
        platforms.entry(*parent).or_default().push(*stop);
    }
    let line_of = |p: &str| -> BTreeSet<String> {
        route_stops
            .iter()
            .filter(|(_, s)| s.contains(p))
            .map(|(r, _)| r.clone())
            .collect()
    };
    let transfers = &t["transfers.txt"];
    let links: HashSet<(&str, &str)> = transfers
        .col("from_stop_id")
        .zip(transfers.col("to_stop_id"))
        .collect();
    let mut interchanges = 0;
    for (station, ps) in &platforms {
        let lines: BTreeSet<String> = ps.iter().flat_map(|p| line_of(p)).collect();
        assert_eq!(lines.len(), ps.len(), "{station}: one platform per line");
        if ps.len() >= 2 {
            interchanges += 1;
            for a in ps {
                for b in ps {
                    assert!(
                        a == b || links.contains(&(*a, *b)),
                        "no transfer {a} -> {b}"
                    );
                }
            }
        }
    }
    assert!(interchanges >= 1, "lines cross at transfer stations");
    for r in &transfers.rows {
        let (from, to) = (
            &r[transfers.idx("from_stop_id")],
            &r[transfers.idx("to_stop_id")],
        );
        assert_eq!(
            parent_of.get(from),
            parent_of.get(to),
            "{from}->{to} across stations"
        );
        assert_eq!(&r[transfers.idx("transfer_type")], "2");
        let min: u32 = r[transfers.idx("min_transfer_time")]
            .parse()
            .expect("min_transfer_time");
        assert!((60..=900).contains(&min), "{from}->{to}: {min} s");
    }

    // feed_info.txt
    let info = &t["feed_info.txt"];
    assert_eq!(
        info.col("feed_publisher_name").next(),
        Some("cityos generator")
    );
    assert_eq!(info.col("feed_lang").next(), Some("ko"));
    t
}

#[test]
fn small_city_is_a_valid_seoul_like_feed() {
    let opts = CityOptions::default();
    let (dir, summary) = generate(&opts);
    assert!(
        (5_000..=60_000).contains(&summary.stop_times),
        "small feed has {} stop_times",
        summary.stop_times
    );
    let t = check_feed(dir.path(), &summary);
    let routes = &t["routes.txt"];
    let count = |k: &str| routes.col("route_desc").filter(|d| *d == k).count();
    assert_eq!(count("subway"), 2);
    assert!(
        (18..=22).contains(&(routes.rows.len() - 2)),
        "~20 bus routes"
    );
    let info = &t["feed_info.txt"];
    let version = info.col("feed_version").next().expect("feed_version");
    assert!(
        version.contains("seed=42") && version.contains("small"),
        "{version}"
    );
    assert_eq!(info.col("feed_start_date").next(), Some("20260101"));
    assert_eq!(info.col("feed_end_date").next(), Some("20261231"));
    // The raw file quotes names with commas (RFC 4180).
    let raw = std::fs::read_to_string(dir.path().join("stops.txt")).expect("stops.txt");
    assert!(raw.lines().any(|l| l.contains(",\"") && l.contains(", ")));
}

#[test]
fn medium_city_has_interchanges_of_several_lines() {
    let opts = CityOptions {
        size: CitySize::Medium,
        seed: 7,
        ..CityOptions::default()
    };
    let (dir, summary) = generate(&opts);
    let t = check_feed(dir.path(), &summary);
    let routes = &t["routes.txt"];
    assert_eq!(
        routes.col("route_desc").filter(|d| *d == "subway").count(),
        5
    );
    assert!(routes.rows.len() > 90);
    assert!(t["transfers.txt"].rows.len() >= 8, "several interchanges");
}

#[test]
fn timetable_follows_the_time_of_day_and_the_calendar() {
    let (dir, _) = generate(&CityOptions::default());
    let trips = Table::read(dir.path(), "trips.txt");
    let st = Table::read(dir.path(), "stop_times.txt");
    let routes = Table::read(dir.path(), "routes.txt");
    let kind: HashMap<&str, &str> = routes
        .col("route_id")
        .zip(routes.col("route_desc"))
        .collect();
    let mut first_dep: HashMap<&str, u32> = HashMap::new();
    for (trip, t) in st.col("trip_id").zip(st.col("departure_time")) {
        first_dep.entry(trip).or_insert_with(|| secs(t));
    }
    // Departures per (route kind, service, hour) from the first stop.
    let mut per_hour: HashMap<(&str, &str, u32), u32> = HashMap::new();
    let mut per_service: HashMap<(&str, &str), u32> = HashMap::new();
    for r in &trips.rows {
        let (route, service, id) = (&r[0], &r[trips.idx("service_id")], &r[trips.idx("trip_id")]);
        let k = kind[route];
        *per_hour
            .entry((k, service, first_dep[id] / 3600))
            .or_default() += 1;
        *per_service.entry((k, service)).or_default() += 1;
    }
    let h = |k, s, hour| per_hour.get(&(k, s, hour)).copied().unwrap_or(0);
    for k in ["trunk", "branch", "subway"] {
        let peak = h(k, "WD", 7) + h(k, "WD", 8);
        let midday = h(k, "WD", 12) + h(k, "WD", 13);
        assert!(
            peak > midday,
            "{k}: {peak} peak vs {midday} midday departures"
        );
        assert!(
            h(k, "WD", 8) > h(k, "SU", 8),
            "{k}: weekday rush hour beats Sunday"
        );
        assert!(per_service[&(k, "WD")] > per_service[&(k, "SU")]);
    }
    // Subway runs more often than buses.
    let subway_routes = kind.values().filter(|k| **k == "subway").count() as u32;
    let trunk_routes = kind.values().filter(|k| **k == "trunk").count() as u32;
    assert!(
        per_service[&("subway", "WD")] / subway_routes
            > per_service[&("trunk", "WD")] / trunk_routes
    );

    // 설날 2026 (Tuesday 17 February) runs the Sunday timetable.
    let cd = Table::read(dir.path(), "calendar_dates.txt");
    let on: Vec<(&str, &str)> = cd
        .col("service_id")
        .zip(cd.col("exception_type"))
        .zip(cd.col("date"))
        .filter(|(_, d)| *d == "20260217")
        .map(|(se, _)| se)
        .collect();
    assert!(
        on.contains(&("WD", "2")) && on.contains(&("SU", "1")),
        "{on:?}"
    );
}

#[test]
fn same_options_give_identical_bytes_and_seeds_differ() {
    let opts = CityOptions::default();
    let (a, _) = generate(&opts);
    let (b, _) = generate(&opts);
    for f in FILES {
        let read = |d: &Path| std::fs::read(d.join(f)).expect(f);
        assert!(read(a.path()) == read(b.path()), "{f} differs between runs");
    }
    let (c, _) = generate(&CityOptions {
        seed: 43,
        ..opts.clone()
    });
    for f in ["stops.txt", "routes.txt", "stop_times.txt", "shapes.txt"] {
        let read = |d: &Path| std::fs::read(d.join(f)).expect(f);
        assert!(read(a.path()) != read(c.path()), "{f} ignores the seed");
    }
}

#[test]
fn stop_times_target_scales_the_feed() {
    for target in [200_000u64, 20_000] {
        let opts = CityOptions {
            stop_times_target: Some(target),
            ..CityOptions::default()
        };
        let mut reports = Vec::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let summary = cityos_sim::generate_city_with_progress(&opts, dir.path(), &mut |d, n| {
            reports.push((d, n))
        })
        .expect("generate");
        let n = summary.stop_times as f64;
        assert!(
            (n - target as f64).abs() <= 0.1 * target as f64,
            "target {target}, got {n}"
        );
        let rows = std::fs::read_to_string(dir.path().join("stop_times.txt"))
            .expect("stop_times.txt")
            .lines()
            .count() as u64;
        assert_eq!(rows - 1, summary.stop_times);
        assert_eq!(
            reports.last(),
            Some(&(summary.stop_times, summary.stop_times))
        );
        assert!(reports.windows(2).all(|w| w[0].0 <= w[1].0));
        if target == 200_000 {
            check_feed(dir.path(), &summary);
        }
    }
}

#[test]
fn bad_options_and_unwritable_paths_are_errors() {
    let bad = CityOptions {
        start_date: (2026, 2, 30),
        ..CityOptions::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        generate_city(&bad, dir.path()),
        Err(GenerateError::InvalidStartDate {
            month: 2,
            day: 30,
            ..
        })
    ));
    let zero = CityOptions {
        stop_times_target: Some(0),
        ..CityOptions::default()
    };
    assert!(matches!(
        generate_city(&zero, dir.path()),
        Err(GenerateError::ZeroTarget)
    ));
    // A regular file where the directory should be.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").expect("write");
    let err = generate_city(&CityOptions::default(), &file).expect_err("must fail");
    assert!(matches!(err, GenerateError::Io { .. }));
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn leap_day_start_covers_one_year() {
    let opts = CityOptions {
        start_date: (2024, 2, 29),
        ..CityOptions::default()
    };
    let (dir, _) = generate(&opts);
    let info = Table::read(dir.path(), "feed_info.txt");
    assert_eq!(info.col("feed_start_date").next(), Some("20240229"));
    assert_eq!(info.col("feed_end_date").next(), Some("20250228"));
}

/// `cargo test --release -p cityos-sim -- --ignored --nocapture`
#[test]
#[ignore = "writes ~1 GB; run in release to measure"]
fn twenty_million_stop_times_are_written_fast() {
    let opts = CityOptions {
        size: CitySize::Large,
        stop_times_target: Some(20_000_000),
        ..CityOptions::default()
    };
    let dir = tempfile::tempdir_in("/tmp").expect("tempdir");
    let t0 = Instant::now();
    let summary = generate_city(&opts, dir.path()).expect("generate");
    let took = t0.elapsed();
    println!("{summary:?} in {took:.2?}");
    let n = summary.stop_times as f64;
    assert!((n - 2e7).abs() <= 2e6, "{n}");
}

#[test]
fn other_seeds_are_valid_too() {
    for seed in [0, 1, 2, u64::MAX] {
        let opts = CityOptions {
            seed,
            ..CityOptions::default()
        };
        let (dir, summary) = generate(&opts);
        check_feed(dir.path(), &summary);
    }
}

/// `cargo test --release -p cityos-sim -- --ignored sweep`
#[test]
#[ignore = "slow: many seeds and every size"]
fn sweep_of_seeds_and_sizes() {
    for seed in 0..40 {
        let opts = CityOptions {
            seed,
            ..CityOptions::default()
        };
        let (dir, summary) = generate(&opts);
        check_feed(dir.path(), &summary);
    }
    for (size, seeds) in [(CitySize::Medium, 0..6), (CitySize::Large, 0..2)] {
        for seed in seeds {
            let opts = CityOptions {
                seed,
                size,
                ..CityOptions::default()
            };
            eprintln!("{size} seed {seed}");
            let (dir, summary) = generate(&opts);
            check_feed(dir.path(), &summary);
        }
    }
}
