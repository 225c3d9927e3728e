-- Blocks of ids leased to a process: the next id not yet leased, per kind
-- (e.g. complaints). Several replicas can then number what they create
-- without colliding, each from its own block.
CREATE TABLE id_leases (
    name TEXT PRIMARY KEY,
    next BIGINT NOT NULL
);
