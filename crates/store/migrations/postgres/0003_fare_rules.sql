-- Every set of fare rules ever in force; card operations name the version that priced them.
CREATE TABLE fare_rules (
    version    BIGINT PRIMARY KEY,
    toml       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
