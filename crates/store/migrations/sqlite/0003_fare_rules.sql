-- Every set of fare rules ever in force; card operations name the version that priced them.
CREATE TABLE fare_rules (
    version    INTEGER PRIMARY KEY,
    toml       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
