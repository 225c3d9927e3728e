//! GTFS Fares v2: exporting what it can express of the rules, and reading
//! that much back.
//!
//! The mapping, one to one with the rules:
//!
//! * each [`Mode`] is a network (`networks.txt`) and a leg group of the same
//!   id (`fare_leg_rules.txt`), priced by the product `base_<mode>`;
//! * each [`Category`] is a rider category, `adult` the default;
//! * the card is one fare medium of type 2 (a physical transit card);
//! * a transfer from mode A to mode B is a `fare_transfer_rules.txt` row
//!   with `fare_transfer_type` 0 (A + AB), where the product AB costs the
//!   difference of base fares when B is dearer, so two legs cost the higher
//!   base fare; its `duration_limit` is the day window, measured from the
//!   tap-out of A to the tap-in of B (`duration_limit_type` 2);
//! * a transfer between two legs of one non-gated mode carries the
//!   journey's transfer limit as `transfer_count`;
//! * a gated mode gets a `fare_leg_join_rules.txt` row from its network to
//!   itself, so changing lines inside the gates is one effective leg, as it
//!   is for cityos.
//!
//! What Fares v2 cannot express (distance steps, the night window,
//! early-bird, re-entry, missing tap-outs, the same-route rule, and
//! highest-base-wins over more than two legs) is listed in `docs/fares.md`;
//! the importer leaves those rules out.

use std::collections::BTreeMap;

use crate::rules::{
    Category, FareRules, FareRulesError, Mode, PerCategory, RawMode, RawRules, RawTransfer,
};

const FARE_MEDIA_ID: &str = "card";
/// `fare_media_type` 2: a physical transit card holding stored value.
const TRANSIT_CARD: &str = "2";
/// `duration_limit_type` 2: from the arrival validation of the first leg to
/// the departure validation of the next, i.e. tap-out to tap-in.
const TAP_OUT_TO_TAP_IN: &str = "2";
/// `fare_transfer_type` 0: the from-leg's product plus the transfer product.
const FROM_LEG_PLUS_TRANSFER: &str = "0";

/// Writes the GTFS Fares v2 files that express `rules`, as `(file name,
/// CSV text)` pairs in a fixed order: `networks.txt`,
/// `rider_categories.txt`, `fare_media.txt`, `fare_products.txt`,
/// `fare_leg_rules.txt`, `fare_leg_join_rules.txt` (when a mode is gated)
/// and `fare_transfer_rules.txt`.
///
/// Routes are tied to networks by the feed that carries these files
/// (`routes.network_id` or `route_networks.txt`): the network ids are the
/// mode names, and `cityos-sim`'s `route_desc` already uses them.
pub fn export_gtfs_fares_v2(rules: &FareRules) -> Vec<(&'static str, String)> {
    let modes: Vec<_> = rules.modes().collect();
    let mut files = Vec::new();

    let mut networks = Csv::new(&["network_id", "network_name"]);
    for (mode, _) in &modes {
        networks.row(&[mode.as_str(), &capitalise(mode.display_name())]);
    }
    files.push(("networks.txt", networks.finish()));

    let mut categories = Csv::new(&[
        "rider_category_id",
        "rider_category_name",
        "is_default_fare_category",
        "eligibility_url",
    ]);
    for category in Category::ALL {
        let default = if category == Category::Adult {
            "1"
        } else {
            "0"
        };
        categories.row(&[
            category.as_str(),
            &capitalise(category.as_str()),
            default,
            "",
        ]);
    }
    files.push(("rider_categories.txt", categories.finish()));

    let mut media = Csv::new(&["fare_media_id", "fare_media_name", "fare_media_type"]);
    media.row(&[FARE_MEDIA_ID, rules.card_name(), TRANSIT_CARD]);
    files.push(("fare_media.txt", media.finish()));

    let mut products = Csv::new(&[
        "fare_product_id",
        "fare_product_name",
        "rider_category_id",
        "fare_media_id",
        "amount",
        "currency",
    ]);
    let mut product_rows = |id: &str, name: &str, amounts: PerCategory| {
        for category in Category::ALL {
            let amount = format_amount(amounts.get(category), rules.currency_decimals());
            products.row(&[
                id,
                name,
                category.as_str(),
                FARE_MEDIA_ID,
                &amount,
                rules.currency(),
            ]);
        }
    };
    for (mode, mode_rules) in &modes {
        product_rows(
            &base_product(*mode),
            &format!("{} base fare", capitalise(mode.display_name())),
            mode_rules.fare,
        );
    }
    let mut transfer_products = BTreeMap::new();
    for (from, from_rules) in &modes {
        for (to, to_rules) in &modes {
            let difference = transfer_difference(from_rules.fare, to_rules.fare);
            if from != to && difference != ZERO {
                let id = format!("transfer_{from}_to_{to}");
                product_rows(
                    &id,
                    &format!(
                        "Transfer from the {} to the {}",
                        from.display_name(),
                        to.display_name()
                    ),
                    difference,
                );
                transfer_products.insert((*from, *to), id);
            }
        }
    }
    files.push(("fare_products.txt", products.finish()));

    let mut leg_rules = Csv::new(&["leg_group_id", "network_id", "fare_product_id"]);
    for (mode, _) in &modes {
        leg_rules.row(&[mode.as_str(), mode.as_str(), &base_product(*mode)]);
    }
    files.push(("fare_leg_rules.txt", leg_rules.finish()));

    if modes.iter().any(|(_, r)| r.gated) {
        let mut joins = Csv::new(&["from_network_id", "to_network_id"]);
        for (mode, _) in modes.iter().filter(|(_, r)| r.gated) {
            joins.row(&[mode.as_str(), mode.as_str()]);
        }
        files.push(("fare_leg_join_rules.txt", joins.finish()));
    }

    let mut transfers = Csv::new(&[
        "from_leg_group_id",
        "to_leg_group_id",
        "transfer_count",
        "duration_limit",
        "duration_limit_type",
        "fare_transfer_type",
        "fare_product_id",
    ]);
    let transfer = rules.transfer();
    if transfer.max_transfers > 0 {
        let window = transfer.window_s.to_string();
        let count = transfer.max_transfers.to_string();
        for (from, from_rules) in &modes {
            for (to, _) in &modes {
                // Inside the gates the join rule makes one leg; there is no
                // transfer to describe.
                if from == to && from_rules.gated {
                    continue;
                }
                let count = if from == to { count.as_str() } else { "" };
                let product = transfer_products
                    .get(&(*from, *to))
                    .map_or("", String::as_str);
                transfers.row(&[
                    from.as_str(),
                    to.as_str(),
                    count,
                    &window,
                    TAP_OUT_TO_TAP_IN,
                    FROM_LEG_PLUS_TRANSFER,
                    product,
                ]);
            }
        }
    }
    files.push(("fare_transfer_rules.txt", transfers.finish()));

    files
}

/// Reads fare rules from GTFS Fares v2 files given as `(file name, CSV
/// text)` pairs, such as [`export_gtfs_fares_v2`] writes.
///
/// It reads base fares per network and rider category, the transfer window
/// and the transfer limit, and which networks join legs inside their gates.
/// The result has no distance fares, night window, early-bird discount or
/// re-entry, since Fares v2 cannot state them. Anything it cannot map
/// exactly (a network that is not a cityos mode, areas, timeframes, a
/// transfer priced other than by the difference of base fares) is an error
/// naming the file, line and field, rather than a silently different fare.
pub fn import_gtfs_fares_v2<N: AsRef<str>, C: AsRef<str>>(
    files: &[(N, C)],
) -> Result<FareRules, GtfsFaresError> {
    let find = |name: &'static str| -> Result<Option<Table>, GtfsFaresError> {
        files
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, text)| Table::parse(name, text.as_ref()))
            .transpose()
    };
    let require =
        |name: &'static str| find(name)?.ok_or(GtfsFaresError::MissingFile { file: name });

    if let Some(table) = find("rider_categories.txt")? {
        for row in &table.rows {
            table.category(row, "rider_category_id")?;
        }
    }
    if let Some(table) = find("networks.txt")? {
        for row in &table.rows {
            table.mode(row, "network_id")?;
        }
    }

    // Products: product id → amount per category, plus the media they use.
    let products_table = require("fare_products.txt")?;
    let mut products: BTreeMap<String, [Option<i64>; 3]> = BTreeMap::new();
    let mut currency: Option<(String, u8)> = None;
    let mut media_used = Vec::new();
    for row in &products_table.rows {
        let id = products_table.required(row, "fare_product_id")?;
        let code = products_table.required(row, "currency")?;
        let (amount, decimals) = products_table.amount(row, "amount")?;
        match &currency {
            None => currency = Some((code.to_owned(), decimals)),
            Some((c, d)) if c == code && *d == decimals => {}
            Some((c, d)) => {
                return Err(products_table.error(
                    row,
                    "currency",
                    &format!(
                        "every amount must be in one currency with one number of decimals; earlier rows use {c} with {d}"
                    ),
                ));
            }
        }
        let categories: Vec<Category> = match products_table.get(row, "rider_category_id") {
            "" => Category::ALL.to_vec(),
            _ => vec![products_table.category(row, "rider_category_id")?],
        };
        let slots = products.entry(id.to_owned()).or_default();
        for category in categories {
            let slot = &mut slots[category_index(category)];
            if slot.is_some_and(|a| a != amount) {
                return Err(products_table.error(
                    row,
                    "amount",
                    &format!("product `{id}` already has another {category} price; cityos has one price per card"),
                ));
            }
            *slot = Some(amount);
        }
        let media = products_table.get(row, "fare_media_id");
        if !media.is_empty() {
            media_used.push(media.to_owned());
        }
    }
    let Some((currency, currency_decimals)) = currency else {
        return Err(GtfsFaresError::Field {
            file: "fare_products.txt".to_owned(),
            line: 1,
            field: "fare_product_id".to_owned(),
            message: "has no products".to_owned(),
        });
    };

    let card_name = match find("fare_media.txt")? {
        None => None,
        Some(table) => table
            .rows
            .iter()
            .find(|row| {
                table.get(row, "fare_media_type") == TRANSIT_CARD
                    && media_used
                        .iter()
                        .any(|m| m == table.get(row, "fare_media_id"))
            })
            .map(|row| table.get(row, "fare_media_name").to_owned())
            .filter(|name| !name.is_empty()),
    };

    // Leg rules: network → base fare, and leg group → network.
    let legs_table = require("fare_leg_rules.txt")?;
    let mut fares: BTreeMap<Mode, PerCategory> = BTreeMap::new();
    let mut groups: BTreeMap<String, Mode> = BTreeMap::new();
    for row in &legs_table.rows {
        for field in [
            "from_area_id",
            "to_area_id",
            "from_timeframe_group_id",
            "to_timeframe_group_id",
        ] {
            if !legs_table.get(row, field).is_empty() {
                return Err(legs_table.error(
                    row,
                    field,
                    "must be empty: cityos fares depend on neither areas nor times of day",
                ));
            }
        }
        let mode = legs_table.mode(row, "network_id")?;
        let product_id = legs_table.required(row, "fare_product_id")?;
        let Some(amounts) = products.get(product_id) else {
            return Err(legs_table.error(
                row,
                "fare_product_id",
                &format!("`{product_id}` is not in fare_products.txt"),
            ));
        };
        let fare = per_category(amounts).map_err(|missing| {
            legs_table.error(
                row,
                "fare_product_id",
                &format!("`{product_id}` has no {missing} price"),
            )
        })?;
        if fares.insert(mode, fare).is_some() {
            return Err(legs_table.error(
                row,
                "network_id",
                &format!(
                    "network `{mode}` has a second leg rule; cityos has one base fare per mode"
                ),
            ));
        }
        let group = legs_table.get(row, "leg_group_id");
        if !group.is_empty() {
            groups.insert(group.to_owned(), mode);
        }
    }

    let mut gated = Vec::new();
    if let Some(table) = find("fare_leg_join_rules.txt")? {
        for row in &table.rows {
            let from = table.mode(row, "from_network_id")?;
            let to = table.mode(row, "to_network_id")?;
            if from != to {
                return Err(table.error(
                    row,
                    "to_network_id",
                    "must equal from_network_id: cityos joins legs only inside one gated mode",
                ));
            }
            for field in ["from_stop_id", "to_stop_id"] {
                if !table.get(row, field).is_empty() {
                    return Err(table.error(
                        row,
                        field,
                        "must be empty: a gated mode joins its legs at every station",
                    ));
                }
            }
            gated.push(from);
        }
    }

    let mut window_s: Option<i64> = None;
    let mut counts: Vec<u32> = Vec::new();
    let mut any_transfer = false;
    if let Some(table) = find("fare_transfer_rules.txt")? {
        for row in &table.rows {
            let group = |field: &str| -> Result<Mode, GtfsFaresError> {
                let id = table.required(row, field)?;
                groups.get(id).copied().ok_or_else(|| {
                    table.error(
                        row,
                        field,
                        &format!("`{id}` is not a leg_group_id of fare_leg_rules.txt"),
                    )
                })
            };
            let from = group("from_leg_group_id")?;
            let to = group("to_leg_group_id")?;
            any_transfer = true;
            let limit = table.required(row, "duration_limit")?;
            let limit: i64 = limit
                .parse()
                .ok()
                .filter(|s| *s > 0 && s % 60 == 0)
                .ok_or_else(|| table.error(row, "duration_limit", "must be a positive whole number of minutes in seconds (cityos windows are minutes)"))?;
            if window_s.is_some_and(|w| w != limit) {
                return Err(table.error(
                    row,
                    "duration_limit",
                    "differs from an earlier row; cityos has one transfer window",
                ));
            }
            window_s = Some(limit);
            if table.get(row, "duration_limit_type") != TAP_OUT_TO_TAP_IN {
                return Err(table.error(
                    row,
                    "duration_limit_type",
                    "must be 2: cityos measures from the tap-out to the next tap-in",
                ));
            }
            if table.get(row, "fare_transfer_type") != FROM_LEG_PLUS_TRANSFER {
                return Err(table.error(
                    row,
                    "fare_transfer_type",
                    "must be 0 (A + AB): cityos charges the higher base fare",
                ));
            }
            // The transfer product must be what highest-base-wins charges:
            // the difference when the next leg is dearer, else nothing.
            let (Some(from_fare), Some(to_fare)) = (fares.get(&from), fares.get(&to)) else {
                return Err(table.error(
                    row,
                    "to_leg_group_id",
                    "names a leg group without a base fare",
                ));
            };
            let expected = transfer_difference(*from_fare, *to_fare);
            let product = table.get(row, "fare_product_id");
            let actual = if product.is_empty() {
                ZERO
            } else {
                let amounts = products.get(product).ok_or_else(|| {
                    table.error(
                        row,
                        "fare_product_id",
                        &format!("`{product}` is not in fare_products.txt"),
                    )
                })?;
                per_category(amounts).map_err(|missing| {
                    table.error(
                        row,
                        "fare_product_id",
                        &format!("`{product}` has no {missing} price"),
                    )
                })?
            };
            if actual != expected {
                return Err(table.error(
                    row,
                    "fare_product_id",
                    "must cost the difference of the two base fares when the second is higher, else nothing: cityos charges the highest base fare of a journey",
                ));
            }
            if from == to {
                let count = table.required(row, "transfer_count")?;
                let count: u32 = count.parse().ok().filter(|c| *c >= 1).ok_or_else(|| {
                    table.error(
                        row,
                        "transfer_count",
                        "must be a positive count: cityos limits the transfers of a journey",
                    )
                })?;
                counts.push(count);
            }
        }
    }
    counts.dedup();
    let max_transfers = match counts.as_slice() {
        [] if any_transfer => 1, // transfers between groups without a stated count: one each
        [] => 0,
        [count] => *count,
        _ => {
            return Err(GtfsFaresError::Field {
                file: "fare_transfer_rules.txt".to_owned(),
                line: 1,
                field: "transfer_count".to_owned(),
                message: format!(
                    "differs between rows ({counts:?}); cityos has one transfer limit per journey"
                ),
            });
        }
    };

    let raw = RawRules {
        currency,
        currency_decimals,
        card_name,
        transfer: RawTransfer {
            max_transfers,
            window_minutes: window_s.map_or(0, |s| u32::try_from(s / 60).unwrap_or(u32::MAX)),
            night: None,
            reentry: None,
        },
        early_bird: None,
        distance: None,
        modes: fares
            .into_iter()
            .map(|(mode, fare)| {
                let raw = RawMode {
                    fare,
                    free_distance_m: None,
                    missing_tap_out_m: None,
                    gated: gated.contains(&mode),
                };
                (mode, raw)
            })
            .collect(),
    };
    Ok(FareRules::from_raw(raw)?)
}

/// GTFS Fares v2 files that cityos cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtfsFaresError {
    /// A file the base fares depend on is absent.
    #[error(
        "{file} is missing; cityos reads base fares from fare_leg_rules.txt and fare_products.txt"
    )]
    MissingFile {
        /// The file name.
        file: &'static str,
    },
    /// A file is not CSV.
    #[error("{file}: {message}")]
    Csv {
        /// The file name.
        file: &'static str,
        /// The CSV reader's message.
        message: String,
    },
    /// A value cannot be read, or states a rule cityos cannot apply.
    #[error("{file} line {line}, `{field}`: {message}")]
    Field {
        /// The file name.
        file: String,
        /// The line, 1 being the header.
        line: u64,
        /// The column.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The rules read are not valid fare rules.
    #[error(transparent)]
    Rules(#[from] FareRulesError),
}

const ZERO: PerCategory = PerCategory {
    adult: 0,
    youth: 0,
    child: 0,
};

fn base_product(mode: Mode) -> String {
    format!("base_{mode}")
}

/// What a transfer from a leg priced `from` to one priced `to` adds under
/// highest-base-wins.
fn transfer_difference(from: PerCategory, to: PerCategory) -> PerCategory {
    PerCategory {
        adult: (to.adult - from.adult).max(0),
        youth: (to.youth - from.youth).max(0),
        child: (to.child - from.child).max(0),
    }
}

fn category_index(category: Category) -> usize {
    match category {
        Category::Adult => 0,
        Category::Youth => 1,
        Category::Child => 2,
    }
}

/// All three prices, or the first category without one.
fn per_category(amounts: &[Option<i64>; 3]) -> Result<PerCategory, Category> {
    let get = |c: Category| amounts[category_index(c)].ok_or(c);
    Ok(PerCategory {
        adult: get(Category::Adult)?,
        youth: get(Category::Youth)?,
        child: get(Category::Child)?,
    })
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// An integer amount in minor units as a GTFS currency amount, which has
/// exactly the currency's decimals: `1550`, `2.00`, `-0.50`.
fn format_amount(amount: i64, decimals: u8) -> String {
    if decimals == 0 {
        return amount.to_string();
    }
    let sign = if amount < 0 { "-" } else { "" };
    let scale = 10u64.pow(u32::from(decimals));
    let abs = amount.unsigned_abs();
    let width = usize::from(decimals);
    format!("{sign}{}.{:0width$}", abs / scale, abs % scale)
}

/// Parses a GTFS currency amount into minor units and its number of
/// decimals, exactly (no floating point).
fn parse_amount(text: &str) -> Option<(i64, u8)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if digits.contains('.') && frac.is_empty() {
        return None;
    }
    let decimals = u8::try_from(frac.len()).ok().filter(|d| *d <= 4)?;
    let value: i64 = format!("{whole}{frac}").parse().ok()?;
    Some((if negative { -value } else { value }, decimals))
}

/// A CSV file being written. Fields are quoted only when they must be.
struct Csv {
    out: String,
}

impl Csv {
    fn new(header: &[&str]) -> Csv {
        let mut csv = Csv { out: String::new() };
        csv.row(header);
        csv
    }

    fn row(&mut self, fields: &[&str]) {
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            if field.contains([',', '"', '\n', '\r']) {
                self.out.push('"');
                self.out.push_str(&field.replace('"', "\"\""));
                self.out.push('"');
            } else {
                self.out.push_str(field);
            }
        }
        self.out.push('\n');
    }

    fn finish(self) -> String {
        self.out
    }
}

/// A CSV file read into memory, with its header.
struct Table {
    file: &'static str,
    columns: Vec<String>,
    rows: Vec<Row>,
}

struct Row {
    line: u64,
    fields: Vec<String>,
}

impl Table {
    fn parse(file: &'static str, text: &str) -> Result<Table, GtfsFaresError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let csv_error = |e: csv::Error| GtfsFaresError::Csv {
            file,
            message: e.to_string(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(str::to_owned)
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, csv::Position::line);
            rows.push(Row {
                line,
                fields: record.iter().map(str::to_owned).collect(),
            });
        }
        Ok(Table {
            file,
            columns,
            rows,
        })
    }

    /// The field, or "" when the column or the value is absent.
    fn get<'a>(&self, row: &'a Row, column: &str) -> &'a str {
        self.columns
            .iter()
            .position(|c| c == column)
            .and_then(|i| row.fields.get(i))
            .map_or("", String::as_str)
    }

    fn required<'a>(&self, row: &'a Row, column: &str) -> Result<&'a str, GtfsFaresError> {
        match self.get(row, column) {
            "" => Err(self.error(row, column, "is required")),
            value => Ok(value),
        }
    }

    fn mode(&self, row: &Row, column: &str) -> Result<Mode, GtfsFaresError> {
        let id = self.required(row, column)?;
        id.parse().map_err(|_| {
            let names: Vec<_> = Mode::ALL.iter().map(|m| m.as_str()).collect();
            self.error(
                row,
                column,
                &format!(
                    "`{id}` is not a cityos mode; network ids must be one of {}",
                    names.join(", ")
                ),
            )
        })
    }

    fn category(&self, row: &Row, column: &str) -> Result<Category, GtfsFaresError> {
        let id = self.required(row, column)?;
        id.parse().map_err(|_| {
            self.error(
                row,
                column,
                &format!("`{id}` is not a cityos rider category; use adult, youth or child"),
            )
        })
    }

    fn amount(&self, row: &Row, column: &str) -> Result<(i64, u8), GtfsFaresError> {
        let text = self.required(row, column)?;
        parse_amount(text).ok_or_else(|| {
            self.error(
                row,
                column,
                &format!("`{text}` is not a currency amount such as 1550 or 2.00"),
            )
        })
    }

    fn error(&self, row: &Row, field: &str, message: &str) -> GtfsFaresError {
        GtfsFaresError::Field {
            file: self.file.to_owned(),
            line: row.line,
            field: field.to_owned(),
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        assert_eq!(format_amount(1550, 0), "1550");
        assert_eq!(format_amount(200, 2), "2.00");
        assert_eq!(format_amount(-50, 2), "-0.50");
        assert_eq!(parse_amount("1550"), Some((1550, 0)));
        assert_eq!(parse_amount("2.00"), Some((200, 2)));
        assert_eq!(parse_amount("-0.50"), Some((-50, 2)));
        assert_eq!(parse_amount("1.5.0"), None);
        assert_eq!(parse_amount("1."), None);
        assert_eq!(parse_amount(".5"), None);
        assert_eq!(parse_amount("1e3"), None);
        assert_eq!(parse_amount(""), None);
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let mut csv = Csv::new(&["a", "b"]);
        csv.row(&["x, y", "say \"hi\""]);
        assert_eq!(csv.finish(), "a,b\n\"x, y\",\"say \"\"hi\"\"\"\n");
    }
}
