//! The worked examples: one table, three uses.
//!
//! `worked_examples.toml` lists tap sequences with the charges Seoul's rules
//! must produce. This test prices each one, then renders the same examples
//! as the table in `docs/fares.md` and checks the doc has exactly that table
//! (and exactly `seoul.toml`). So the numbers a reader sees are the numbers
//! the engine computes. `UPDATE_EXPECT=1 cargo test -p cityos-fare` rewrites
//! the generated parts of the doc.

use std::fmt::Write as _;
use std::path::PathBuf;

use cityos_fare::{Category, DistanceTable, FareRules, Mode, Tap, quote};
use jiff::civil::{Date, DateTime, Time, date};
use serde::Deserialize;

const FIXTURE: &str = include_str!("worked_examples.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    example: Vec<Example>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    name: String,
    #[serde(default = "adult")]
    category: Category,
    taps: Vec<String>,
    charges: Vec<String>,
    total: i64,
}

fn adult() -> Category {
    Category::Adult
}

const DAY: Date = date(2025, 3, 3);

/// Parses "HH:MM in|out MODE ROUTE STOP [METRES]" and records the distance
/// of a tap-out from the open leg's boarding stop.
fn parse_taps(example: &Example) -> (Vec<Tap>, DistanceTable) {
    let mut taps = Vec::new();
    let mut distances = DistanceTable::new();
    let mut boarded_at: Option<String> = None;
    for text in &example.taps {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [time, kind, mode, route, stop, rest @ ..] = words.as_slice() else {
            panic!("{}: cannot read tap `{text}`", example.name);
        };
        let at: Time = format!("{time}:00")
            .parse()
            .unwrap_or_else(|e| panic!("{}: time `{time}`: {e}", example.name));
        let mode: Mode = mode
            .parse()
            .unwrap_or_else(|_| panic!("{}: mode `{mode}`", example.name));
        let route = (*route != "-").then_some(*route);
        let tap = match *kind {
            "in" => {
                boarded_at = Some((*stop).to_owned());
                Tap::tap_in(DateTime::from_parts(DAY, at), mode, route, stop)
            }
            "out" => Tap::tap_out(DateTime::from_parts(DAY, at), mode, route, stop),
            other => panic!("{}: kind `{other}`", example.name),
        };
        if let [metres] = rest {
            let metres: u32 = metres
                .parse()
                .unwrap_or_else(|_| panic!("{}: metres `{metres}`", example.name));
            let from = boarded_at.as_deref().unwrap_or_else(|| {
                panic!("{}: distance on a tap-out with no tap-in", example.name)
            });
            distances.insert(route, from, stop, metres);
        }
        taps.push(tap);
    }
    (taps, distances)
}

#[test]
fn every_worked_example_is_charged_as_written() {
    let fixture: Fixture = toml::from_str(FIXTURE).expect("worked_examples.toml parses");
    let rules = FareRules::seoul();
    let mut failures = Vec::new();
    for example in &fixture.example {
        let (taps, distances) = parse_taps(example);
        let q = match quote(&rules, example.category, &taps, &distances) {
            Ok(q) => q,
            Err(e) => {
                failures.push(format!("{}: {e}", example.name));
                continue;
            }
        };
        let got: Vec<String> = q
            .charges
            .iter()
            .map(|c| format!("{}: {} {}", c.tap_index, c.amount, c.rule))
            .collect();
        if got != example.charges || q.total != example.total {
            failures.push(format!(
                "{}:\n  expected {:?} = {}\n  got      {:?} = {}",
                example.name, example.charges, example.total, got, q.total
            ));
        }
        // Every charge has its words too, and its rule's name is its serialised tag.
        assert!(q.charges.iter().all(|c| !c.explanation.is_empty()));
        for c in &q.charges {
            let tag = serde_json::to_value(c.rule).unwrap();
            assert_eq!(tag["rule"], c.rule.name());
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The examples as a Markdown table, with amounts formatted like the doc.
fn render_table(fixture: &Fixture, rules: &FareRules) -> String {
    let mut out = String::from(
        "| # | Example | Taps | Charges (tap: amount, rule) | Total |\n|---|---|---|---|---|\n",
    );
    for (i, e) in fixture.example.iter().enumerate() {
        let name = if e.category == Category::Adult {
            e.name.clone()
        } else {
            format!("{} ({})", e.name, e.category)
        };
        let taps: Vec<String> = e
            .taps
            .iter()
            .enumerate()
            .map(|(k, t)| format!("{k}. `{t}`"))
            .collect();
        let charges: Vec<String> = e
            .charges
            .iter()
            .map(|c| {
                let (tap, rest) = c.split_once(": ").expect("charge `TAP: AMOUNT RULE`");
                let (amount, rule) = rest.split_once(' ').expect("charge `TAP: AMOUNT RULE`");
                let amount: i64 = amount.parse().expect("integer amount");
                let sign = if amount > 0 { "+" } else { "" };
                format!(
                    "{tap}: {sign}{} `{rule}`",
                    rules.format_money(amount).trim_end_matches(" KRW")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            name,
            taps.join("<br>"),
            charges.join("<br>"),
            rules.format_money(e.total)
        );
    }
    out
}

fn docs_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/fares.md")
}

/// Replaces what lies between `<!-- BEGIN name -->` and `<!-- END name -->`.
fn replace_section(doc: &str, name: &str, body: &str) -> String {
    let begin = format!("<!-- BEGIN {name} -->\n");
    let end = format!("<!-- END {name} -->");
    let start = doc
        .find(&begin)
        .unwrap_or_else(|| panic!("docs/fares.md has no `{}`", begin.trim()))
        + begin.len();
    let stop = doc[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("docs/fares.md has no `{end}`"))
        + start;
    format!("{}{}{}", &doc[..start], body, &doc[stop..])
}

#[test]
fn docs_show_the_same_examples_and_the_same_seoul_toml() {
    let fixture: Fixture = toml::from_str(FIXTURE).expect("worked_examples.toml parses");
    let rules = FareRules::seoul();
    let path = docs_path();
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected = replace_section(&doc, "worked-examples", &render_table(&fixture, &rules));
    let expected = replace_section(
        &expected,
        "seoul.toml",
        &format!("```toml\n{}```\n", FareRules::seoul_toml()),
    );
    if doc != expected {
        // A test helper reading the environment, like expect-test's
        // UPDATE_EXPECT: the one way to regenerate the doc.
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&path, &expected)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        } else {
            panic!(
                "docs/fares.md is out of date with worked_examples.toml or seoul.toml; \
                 run `UPDATE_EXPECT=1 cargo test -p cityos-fare --test worked_examples` and review the diff"
            );
        }
    }
}
