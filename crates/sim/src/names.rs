//! Synthetic Korean place names with a romanisation.
//!
//! Neighbourhoods get two-syllable names (신림, 도봉 …); stops and stations are
//! named after their neighbourhood plus a landmark kind, the way Seoul names
//! bus stops ("신림시장", "도봉동주민센터").

use std::collections::HashSet;

use crate::geo::P;
use crate::rng::Rng;

/// Syllables common in Seoul place names, with their Revised Romanisation.
const SYLLABLES: &[(&str, &str)] = &[
    ("가", "ga"),
    ("강", "gang"),
    ("개", "gae"),
    ("고", "go"),
    ("관", "gwan"),
    ("광", "gwang"),
    ("구", "gu"),
    ("금", "geum"),
    ("길", "gil"),
    ("남", "nam"),
    ("내", "nae"),
    ("노", "no"),
    ("능", "neung"),
    ("당", "dang"),
    ("대", "dae"),
    ("도", "do"),
    ("두", "du"),
    ("마", "ma"),
    ("망", "mang"),
    ("명", "myeong"),
    ("목", "mok"),
    ("문", "mun"),
    ("미", "mi"),
    ("반", "ban"),
    ("방", "bang"),
    ("백", "baek"),
    ("보", "bo"),
    ("봉", "bong"),
    ("부", "bu"),
    ("북", "buk"),
    ("사", "sa"),
    ("산", "san"),
    ("삼", "sam"),
    ("상", "sang"),
    ("서", "seo"),
    ("석", "seok"),
    ("선", "seon"),
    ("성", "seong"),
    ("세", "se"),
    ("소", "so"),
    ("송", "song"),
    ("수", "su"),
    ("신", "sin"),
    ("안", "an"),
    ("암", "am"),
    ("양", "yang"),
    ("여", "yeo"),
    ("연", "yeon"),
    ("영", "yeong"),
    ("오", "o"),
    ("옥", "ok"),
    ("왕", "wang"),
    ("용", "yong"),
    ("우", "u"),
    ("원", "won"),
    ("월", "wol"),
    ("은", "eun"),
    ("이", "i"),
    ("인", "in"),
    ("일", "il"),
    ("자", "ja"),
    ("장", "jang"),
    ("정", "jeong"),
    ("제", "je"),
    ("조", "jo"),
    ("종", "jong"),
    ("중", "jung"),
    ("지", "ji"),
    ("진", "jin"),
    ("창", "chang"),
    ("천", "cheon"),
    ("청", "cheong"),
    ("충", "chung"),
    ("평", "pyeong"),
    ("풍", "pung"),
    ("하", "ha"),
    ("학", "hak"),
    ("한", "han"),
    ("합", "hap"),
    ("행", "haeng"),
    ("현", "hyeon"),
    ("호", "ho"),
    ("홍", "hong"),
    ("화", "hwa"),
    ("회", "hoe"),
    ("효", "hyo"),
    ("흥", "heung"),
    ("림", "rim"),
    ("포", "po"),
    ("계", "gye"),
];

/// Kinds of landmark a bus stop is named after.
const STOP_SUFFIXES: &[(&str, &str)] = &[
    ("사거리", "Sageori"),
    ("삼거리", "Samgeori"),
    ("입구", "Entrance"),
    ("시장", "Market"),
    ("초등학교", "Elementary School"),
    ("중학교", "Middle School"),
    ("고등학교", "High School"),
    ("공원", "Park"),
    ("주민센터", "Community Center"),
    ("우체국", "Post Office"),
    ("아파트", "Apartments"),
    ("병원", "Hospital"),
    ("도서관", "Library"),
    ("파출소", "Police Box"),
    ("체육관", "Gymnasium"),
    ("소방서", "Fire Station"),
    ("교회", "Church"),
    ("복지관", "Welfare Center"),
    ("구청", "District Office"),
    ("육교", "Footbridge"),
];

/// Real names of downtown stations, given to the stations nearest the centre.
pub(crate) const DOWNTOWN_STATIONS: &[(&str, &str)] = &[
    ("시청", "City Hall"),
    ("종각", "Jonggak"),
    ("광화문", "Gwanghwamun"),
    ("을지로입구", "Euljiro 1-ga"),
    ("서울역", "Seoul Station"),
    ("종로3가", "Jongno 3-ga"),
    ("안국", "Anguk"),
    ("회현", "Hoehyeon"),
    ("충무로", "Chungmuro"),
    ("동대문", "Dongdaemun"),
];

/// A name in Korean with its romanisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub ko: String,
    pub en: String,
}

impl Name {
    pub(crate) fn new(ko: &str, en: &str) -> Self {
        Self {
            ko: ko.to_owned(),
            en: en.to_owned(),
        }
    }

    /// `한글 (Romanisation)`, the form written to `stop_name`.
    pub(crate) fn full(&self) -> String {
        format!("{} ({})", self.ko, self.en)
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Neighbourhood names on a square grid of cells covering the city.
pub(crate) struct Gazetteer {
    half: f64,
    cell: f64,
    per_side: usize,
    bases: Vec<Name>,
}

impl Gazetteer {
    /// Names every `cell`-metre cell of the square `[-half, half]²` uniquely.
    pub(crate) fn new(seed: u64, half: f64, cell: f64) -> Self {
        let per_side = ((2.0 * half / cell).ceil() as usize).max(1);
        let mut rng = Rng::derive(seed, &[0x6E61_6D65]);
        let mut seen = HashSet::new();
        let mut bases = Vec::with_capacity(per_side * per_side);
        while bases.len() < per_side * per_side {
            let a = SYLLABLES[rng.index(SYLLABLES.len())];
            let b = SYLLABLES[rng.index(SYLLABLES.len())];
            if a == b || !seen.insert((a.0, b.0)) {
                continue;
            }
            bases.push(Name {
                ko: format!("{}{}", a.0, b.0),
                en: capitalise(&format!("{}{}", a.1, b.1)),
            });
        }
        Self {
            half,
            cell,
            per_side,
            bases,
        }
    }

    /// The neighbourhood of `p`, optionally shifted by whole cells.
    pub(crate) fn base_at(&self, p: P, dx: i64, dy: i64) -> &Name {
        let n = self.per_side as i64;
        let cx = (((p.x + self.half) / self.cell).floor() as i64 + dx).clamp(0, n - 1);
        let cy = (((p.y + self.half) / self.cell).floor() as i64 + dy).clamp(0, n - 1);
        &self.bases[(cy * n + cx) as usize]
    }
}

/// Hands out names that are unique by their Korean part.
#[derive(Default)]
pub(crate) struct NameSet {
    used: HashSet<String>,
}

impl NameSet {
    /// Takes `name` if it is still free.
    pub(crate) fn claim(&mut self, name: Name) -> Option<Name> {
        self.used.insert(name.ko.clone()).then_some(name)
    }

    /// Takes `name`, numbering it (`2`, `3` …) until it is free.
    fn claim_numbered(&mut self, name: Name) -> Name {
        for k in 2.. {
            let n = Name {
                ko: format!("{}{k}", name.ko),
                en: format!("{} {k}", name.en),
            };
            if let Some(n) = self.claim(n) {
                return n;
            }
        }
        unreachable!("names run out only after u64::MAX tries")
    }

    fn stop_form(base: &Name, rng: &mut Rng) -> Name {
        let (sk, se) = STOP_SUFFIXES[rng.index(STOP_SUFFIXES.len())];
        if rng.chance(0.35) {
            Name {
                ko: format!("{}동{sk}", base.ko),
                en: format!("{}-dong {se}", base.en),
            }
        } else {
            Name {
                ko: format!("{}{sk}", base.ko),
                en: format!("{} {se}", base.en),
            }
        }
    }

    /// A bus stop name for a stop at `p`; with `pair` it names two
    /// landmarks, `A, B`, as Seoul does near big junctions.
    pub(crate) fn bus_stop(&mut self, gaz: &Gazetteer, p: P, pair: bool, rng: &mut Rng) -> Name {
        let home = gaz.base_at(p, 0, 0).clone();
        let mut last = None;
        for attempt in 0..24 {
            // Later attempts borrow a neighbouring cell's name.
            let base = if attempt < 12 {
                home.clone()
            } else {
                gaz.base_at(p, rng.range_i32(-1, 1).into(), rng.range_i32(-1, 1).into())
                    .clone()
            };
            let mut n = Self::stop_form(&base, rng);
            if pair {
                let other = Self::stop_form(&base, rng);
                if other.ko != n.ko {
                    n = Name {
                        ko: format!("{}, {}", n.ko, other.ko),
                        en: format!("{}, {}", n.en, other.en),
                    };
                }
            }
            last = Some(n.clone());
            if let Some(n) = self.claim(n) {
                return n;
            }
        }
        let fallback = last.unwrap_or_else(|| home.clone());
        self.claim_numbered(fallback)
    }

    /// A subway station name for a station at `p`: the neighbourhood's
    /// name, or a landmark in it when the plain name is taken.
    pub(crate) fn station(&mut self, gaz: &Gazetteer, p: P, rng: &mut Rng) -> Name {
        let base = gaz.base_at(p, 0, 0).clone();
        if let Some(n) = self.claim(base.clone()) {
            return n;
        }
        for _ in 0..8 {
            if let Some(n) = self.claim(Self::stop_form(&base, rng)) {
                return n;
            }
        }
        self.claim_numbered(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_bilingual() {
        let gaz = Gazetteer::new(3, 2000.0, 1000.0);
        let mut set = NameSet::default();
        let mut rng = Rng::derive(3, &[]);
        let mut all = HashSet::new();
        for i in 0..500 {
            let p = P::new(
                f64::from(i % 40) * 100.0 - 2000.0,
                f64::from(i / 40) * 100.0,
            );
            let n = set.bus_stop(&gaz, p, i % 16 == 5, &mut rng);
            assert!(!n.en.is_empty() && n.en.is_ascii(), "{n:?}");
            assert!(all.insert(n.ko.clone()), "duplicate {n:?}");
        }
        assert!(all.iter().any(|n| n.contains(", ")));
    }
}
