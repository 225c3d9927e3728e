-- The card journal: one row per group commit of the card desk. The body is
-- a JSON array of the batch's operations, each with the network lookups that
-- priced it, its answer and its ledger transfers: one row per commit keeps a
-- durable tap to a few bytes of sequential write. Batch numbers come from the
-- desk, so a second writer on the same database collides instead of interleaving.
-- Rows of the per-operation tables (0002) are moved here when the desk opens.
CREATE TABLE card_log (
    batch INTEGER PRIMARY KEY,
    ops   INTEGER NOT NULL CHECK (ops > 0),
    body  TEXT NOT NULL
);
