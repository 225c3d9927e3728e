//! GTFS Fares v2: what the export says, that the importer reads back all of
//! it, and that the importer refuses what it cannot apply.

use cityos_fare::{
    Category, FareRules, GtfsFaresError, Mode, export_gtfs_fares_v2, import_gtfs_fares_v2,
};

fn file<'a>(files: &'a [(&'static str, String)], name: &str) -> &'a str {
    files
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.as_str())
        .unwrap_or_else(|| panic!("no {name}"))
}

fn replace(
    files: &[(&'static str, String)],
    name: &str,
    from: &str,
    to: &str,
) -> Vec<(&'static str, String)> {
    files
        .iter()
        .map(|(n, t)| {
            if *n == name {
                assert!(t.contains(from), "{name} has no `{from}`");
                (*n, t.replacen(from, to, 1))
            } else {
                (*n, t.clone())
            }
        })
        .collect()
}

#[test]
fn the_export_has_the_fares_v2_files_in_a_fixed_order() {
    let files = export_gtfs_fares_v2(&FareRules::seoul());
    let names: Vec<_> = files.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "networks.txt",
            "rider_categories.txt",
            "fare_media.txt",
            "fare_products.txt",
            "fare_leg_rules.txt",
            "fare_leg_join_rules.txt",
            "fare_transfer_rules.txt",
        ]
    );
    assert_eq!(
        export_gtfs_fares_v2(&FareRules::seoul()),
        files,
        "the export is deterministic"
    );
}

#[test]
fn the_export_states_seoul_s_fares() {
    let files = export_gtfs_fares_v2(&FareRules::seoul());
    assert!(
        file(&files, "networks.txt")
            .starts_with("network_id,network_name\nsubway,Subway\ntrunk,Trunk bus\n")
    );
    assert_eq!(
        file(&files, "rider_categories.txt"),
        "rider_category_id,rider_category_name,is_default_fare_category,eligibility_url\n\
         adult,Adult,1,\nyouth,Youth,0,\nchild,Child,0,\n"
    );
    assert_eq!(
        file(&files, "fare_media.txt"),
        "fare_media_id,fare_media_name,fare_media_type\ncard,T-money,2\n"
    );
    let products = file(&files, "fare_products.txt");
    assert!(products.contains("base_subway,Subway base fare,adult,card,1550,KRW\n"));
    assert!(products.contains("base_subway,Subway base fare,youth,card,900,KRW\n"));
    assert!(products.contains("base_wide_area,Wide-area bus base fare,child,card,1200,KRW\n"));
    // Trunk to subway costs the difference for adults and nothing for
    // youth and children, whose two fares are equal.
    assert!(products.contains(
        "transfer_trunk_to_subway,Transfer from the trunk bus to the subway,adult,card,50,KRW\n"
    ));
    assert!(products.contains(
        "transfer_trunk_to_subway,Transfer from the trunk bus to the subway,youth,card,0,KRW\n"
    ));
    // No product where the next leg is never dearer.
    assert!(!products.contains("transfer_subway_to_trunk"));
    assert!(file(&files, "fare_leg_rules.txt").contains("\nsubway,subway,base_subway\n"));
    assert_eq!(
        file(&files, "fare_leg_join_rules.txt"),
        "from_network_id,to_network_id\nsubway,subway\n"
    );
    let transfers = file(&files, "fare_transfer_rules.txt");
    assert!(transfers.contains("\ntrunk,subway,,1800,2,0,transfer_trunk_to_subway\n"));
    assert!(transfers.contains("\ntrunk,trunk,4,1800,2,0,\n"));
    assert!(transfers.contains("\nsubway,trunk,,1800,2,0,\n"));
    assert!(
        !transfers.contains("\nsubway,subway,"),
        "inside the gates the join rule applies"
    );
    // 7 modes: 7 × 7 ordered pairs, less the gated subway to itself.
    assert_eq!(transfers.lines().count(), 1 + 48);
}

#[test]
fn export_then_import_keeps_everything_fares_v2_expresses() {
    let seoul = FareRules::seoul();
    let imported = import_gtfs_fares_v2(&export_gtfs_fares_v2(&seoul)).expect("the export imports");
    for mode in Mode::ALL {
        for category in Category::ALL {
            assert_eq!(
                imported.base_fare(mode, category),
                seoul.base_fare(mode, category),
                "{mode} {category}"
            );
        }
        assert_eq!(
            imported.mode(mode).map(|m| m.gated),
            seoul.mode(mode).map(|m| m.gated),
            "{mode}"
        );
    }
    assert_eq!(
        imported.transfer().max_transfers,
        seoul.transfer().max_transfers
    );
    assert_eq!(imported.transfer().window_s, seoul.transfer().window_s);
    assert_eq!(imported.currency(), "KRW");
    assert_eq!(imported.currency_decimals(), 0);
    assert_eq!(imported.card_name(), "T-money");
    // What Fares v2 cannot state is absent, not guessed.
    assert!(imported.distance().is_none());
    assert!(imported.modes().all(|(_, m)| m.distance.is_none()));
    assert!(imported.early_bird().is_none());
    assert!(imported.transfer().night.is_none());
    assert!(imported.transfer().reentry.is_none());
    // And a second round trip changes nothing.
    let again =
        import_gtfs_fares_v2(&export_gtfs_fares_v2(&imported)).expect("the re-export imports");
    assert_eq!(again, imported);
}

#[test]
fn a_city_with_cents_round_trips_its_decimals() {
    let text = r#"
currency = "EUR"
currency_decimals = 2
[transfer]
max_transfers = 2
window_minutes = 90
[modes.trunk]
fare = { adult = 250, youth = 125, child = 0 }
[modes.subway]
fare = { adult = 310, youth = 155, child = 0 }
gated = true
"#;
    let rules = FareRules::from_toml(text).expect("rules");
    let files = export_gtfs_fares_v2(&rules);
    assert!(
        file(&files, "fare_products.txt")
            .contains("base_trunk,Trunk bus base fare,adult,card,2.50,EUR\n")
    );
    assert!(
        file(&files, "fare_products.txt")
            .contains("base_trunk,Trunk bus base fare,child,card,0.00,EUR\n")
    );
    let back = import_gtfs_fares_v2(&files).expect("imports");
    assert_eq!(back.base_fare(Mode::Subway, Category::Youth), Some(155));
    assert_eq!(back.currency_decimals(), 2);
    assert_eq!(back.transfer().window_s, 90 * 60);
    assert_eq!(back.transfer().max_transfers, 2);
}

#[test]
fn what_cannot_be_applied_is_refused_with_file_line_and_field() {
    let files = export_gtfs_fares_v2(&FareRules::seoul());
    let err = |files: &[(&'static str, String)]| match import_gtfs_fares_v2(files) {
        Ok(_) => panic!("imported"),
        Err(e) => e.to_string(),
    };

    let senior = replace(
        &files,
        "rider_categories.txt",
        "child,Child",
        "senior,Senior",
    );
    assert_eq!(
        err(&senior),
        "rider_categories.txt line 4, `rider_category_id`: `senior` is not a cityos rider category; use adult, youth or child"
    );

    let tram = replace(&files, "fare_leg_rules.txt", "night,night", "night,tram");
    assert!(
        err(&tram)
            .starts_with("fare_leg_rules.txt line 8, `network_id`: `tram` is not a cityos mode")
    );

    let night_window = replace(
        &files,
        "fare_transfer_rules.txt",
        "trunk,trunk,4,1800",
        "trunk,trunk,4,3600",
    );
    assert!(err(&night_window).contains("`duration_limit`: differs from an earlier row"));

    let dear = replace(
        &files,
        "fare_products.txt",
        "adult,card,50,KRW",
        "adult,card,60,KRW",
    );
    assert!(err(&dear).contains("`fare_product_id`: must cost the difference"));

    let zones = replace(
        &files,
        "fare_leg_rules.txt",
        "leg_group_id,network_id,fare_product_id\n",
        "leg_group_id,network_id,fare_product_id,from_area_id\n",
    );
    let zones = replace(
        &zones,
        "fare_leg_rules.txt",
        "subway,subway,base_subway",
        "subway,subway,base_subway,zone1",
    );
    assert!(err(&zones).contains("`from_area_id`: must be empty"));

    let float = replace(&files, "fare_products.txt", "1550,KRW", "1550.0,KRW");
    assert!(
        err(&float).contains(
            "`currency`: every amount must be in one currency with one number of decimals"
        )
    );

    let without: Vec<_> = files
        .iter()
        .filter(|(n, _)| *n != "fare_products.txt")
        .cloned()
        .collect();
    assert!(matches!(
        import_gtfs_fares_v2(&without),
        Err(GtfsFaresError::MissingFile {
            file: "fare_products.txt"
        })
    ));
}

#[test]
fn hand_written_files_with_a_bom_quotes_and_shared_products_import() {
    let files = [
        (
            "fare_products.txt",
            "\u{feff}fare_product_id,amount,currency\n\"flat\",1200,KRW\n",
        ),
        (
            "fare_leg_rules.txt",
            "network_id,fare_product_id\nvillage,flat\n",
        ),
    ];
    let rules = import_gtfs_fares_v2(&files).expect("imports");
    assert_eq!(rules.base_fare(Mode::Village, Category::Child), Some(1200));
    assert_eq!(rules.transfer().max_transfers, 0);
    assert_eq!(rules.card_name(), "transportation card");
}
