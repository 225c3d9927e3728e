//! The Open311 form decoder and its validation on arbitrary bodies: they
//! must never panic, and every refusal must name a field.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    static CATALOG: OnceLock<cityos_civic::Catalog> = OnceLock::new();
    let catalog = CATALOG.get_or_init(cityos_civic::Catalog::seoul);
    if let Ok(form) = cityos_civic::form::decode(body)
        && let Err(e) = cityos_civic::form::validate(&form, catalog)
    {
        assert!(!e.field.is_empty() && !e.message.is_empty());
    }
});
