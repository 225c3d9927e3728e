//! One GTFS file read as a table: header → column indices, rows as byte
//! records, and every problem reported with its file and line.

use std::io::Read;

use crate::gtfs::{Issue, Report};

/// A CSV file of the feed being read row by row.
pub(crate) struct Table<'r> {
    pub(crate) file: &'static str,
    reader: csv::Reader<Box<dyn Read + 'r>>,
    headers: Vec<String>,
    pub(crate) record: csv::ByteRecord,
    pub(crate) line: u64,
}

impl<'r> Table<'r> {
    /// Reads the header of `file`, warning about columns this reader does not know.
    pub(crate) fn new(
        file: &'static str,
        input: Box<dyn Read + 'r>,
        known: &[&str],
        report: &mut Report,
    ) -> Option<Table<'r>> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .buffer_capacity(1 << 16)
            .from_reader(input);
        let headers: Vec<String> = match reader.byte_headers() {
            Ok(h) => h
                .iter()
                // The csv crate strips a UTF-8 BOM; stray spaces in headers are common in the wild.
                .map(|f| {
                    String::from_utf8_lossy(f)
                        .trim()
                        .trim_start_matches('\u{feff}')
                        .to_owned()
                })
                .collect(),
            Err(e) => {
                report.error(Issue::at(file, 1, None, format!("cannot read header: {e}")));
                return None;
            }
        };
        for h in &headers {
            if !h.is_empty() && !known.contains(&h.as_str()) {
                report.warning(Issue::at(
                    file,
                    1,
                    Some(h),
                    "unknown column, ignored".to_owned(),
                ));
            }
        }
        Some(Table {
            file,
            reader,
            headers,
            record: csv::ByteRecord::new(),
            line: 1,
        })
    }

    /// The index of an optional column.
    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// The index of a required column, or an error naming it.
    pub(crate) fn required(&self, name: &str, report: &mut Report) -> Option<usize> {
        let column = self.column(name);
        if column.is_none() {
            report.error(Issue::at(
                self.file,
                1,
                Some(name),
                "required column is missing".to_owned(),
            ));
        }
        column
    }

    /// Moves to the next row; false at the end or on an unreadable file.
    pub(crate) fn next_row(&mut self, report: &mut Report) -> bool {
        loop {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {
                    self.line = self.record.position().map_or(self.line + 1, |p| p.line());
                    // Blank lines carry no data; the spec's files sometimes end with several.
                    if self.record.len() == 1 && self.record[0].trim_ascii().is_empty() {
                        continue;
                    }
                    return true;
                }
                Ok(false) => return false,
                Err(e) => {
                    let line = e.position().map_or(self.line + 1, |p| p.line());
                    report.error(Issue::at(
                        self.file,
                        line,
                        None,
                        format!("unreadable CSV: {e}"),
                    ));
                    return false;
                }
            }
        }
    }

    /// The raw bytes of `column` in the current row (empty when absent).
    pub(crate) fn bytes(&self, column: Option<usize>) -> &[u8] {
        column
            .and_then(|c| self.record.get(c))
            .unwrap_or(b"")
            .trim_ascii()
    }

    /// The text of `column`, or `None` (with an error) when it is not UTF-8.
    pub(crate) fn text(&self, column: Option<usize>, report: &mut Report) -> Option<&str> {
        match std::str::from_utf8(self.bytes(column)) {
            Ok(s) => Some(s),
            Err(_) => {
                let name = column.map(|c| self.headers[c].as_str());
                report.error(Issue::at(
                    self.file,
                    self.line,
                    name,
                    "is not valid UTF-8".to_owned(),
                ));
                None
            }
        }
    }

    /// The text of `column` as an owned string, empty on error.
    pub(crate) fn string(&self, column: Option<usize>, report: &mut Report) -> String {
        self.text(column, report).unwrap_or("").to_owned()
    }

    /// The text of a required, non-empty field.
    pub(crate) fn required_text(
        &self,
        column: Option<usize>,
        name: &str,
        report: &mut Report,
    ) -> Option<&str> {
        let text = self.text(column, report)?;
        if text.is_empty() {
            report.error(self.issue(name, "is required but empty".to_owned()));
            return None;
        }
        Some(text)
    }

    /// Parses a field with `parse`; empty gives `Ok(None)`, a bad value an error naming the field.
    pub(crate) fn parse<T>(
        &self,
        column: Option<usize>,
        name: &str,
        expected: &str,
        report: &mut Report,
        parse: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let bytes = self.bytes(column);
        if bytes.is_empty() {
            return None;
        }
        let value = parse(bytes);
        if value.is_none() {
            report.error(self.issue(
                name,
                format!("'{}' is not {expected}", String::from_utf8_lossy(bytes)),
            ));
        }
        value
    }

    /// An issue at the current row.
    pub(crate) fn issue(&self, field: &str, message: String) -> Issue {
        Issue::at(self.file, self.line, Some(field), message)
    }
}

/// Parses an unsigned integer (ASCII digits only, as GTFS writes them).
pub(crate) fn parse_u32(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u32::from(b - b'0'))?;
    }
    Some(value)
}

/// Parses a float that must be finite.
pub(crate) fn parse_f64(bytes: &[u8]) -> Option<f64> {
    std::str::from_utf8(bytes)
        .ok()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Parses a small enumerated integer in `0..=max`.
pub(crate) fn parse_enum(max: u8) -> impl Fn(&[u8]) -> Option<u8> {
    move |bytes| {
        parse_u32(bytes)
            .filter(|&v| v <= u32::from(max))
            .map(|v| v as u8)
    }
}

/// Parses a `RRGGBB` colour.
pub(crate) fn parse_color(bytes: &[u8]) -> Option<String> {
    (bytes.len() == 6 && bytes.iter().all(u8::is_ascii_hexdigit))
        .then(|| String::from_utf8_lossy(bytes).to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::parse_u32;
    use proptest::prelude::*;

    #[test]
    fn integers_are_plain_digits_within_u32() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b"+1"), None);
        assert_eq!(parse_u32(b"1.0"), None);
        assert_eq!(parse_u32(b""), None);
    }

    proptest! {
        #[test]
        fn agrees_with_the_standard_parser(text in "[0-9]{1,12}|.{0,12}") {
            let expected = if text.starts_with('+') { None } else { text.parse::<u32>().ok() };
            prop_assert_eq!(parse_u32(text.as_bytes()), expected);
        }
    }
}
