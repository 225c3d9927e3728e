-- Smart card operations, append-only: the card service's state is rebuilt by replaying them.
CREATE TABLE card_ops (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    op_id    TEXT NOT NULL UNIQUE,
    kind     TEXT NOT NULL,
    card_id  INTEGER NOT NULL,
    request  TEXT NOT NULL,
    answer   TEXT NOT NULL,
    at       INTEGER NOT NULL
);
CREATE INDEX card_ops_card ON card_ops(card_id, seq);
-- A validator's transaction counter makes a repeated tap recognisable.
CREATE TABLE card_taps (
    validator_id TEXT NOT NULL,
    counter      INTEGER NOT NULL,
    op_id        TEXT NOT NULL,
    PRIMARY KEY (validator_id, counter)
) WITHOUT ROWID;
-- The double-entry ledger: every won that moves, debit and credit, never edited.
CREATE TABLE ledger_transfers (
    id        TEXT PRIMARY KEY,
    debit     TEXT NOT NULL,
    credit    TEXT NOT NULL,
    amount    INTEGER NOT NULL CHECK (amount > 0),
    kind      TEXT NOT NULL,
    reference TEXT,
    at        INTEGER NOT NULL,
    CHECK (debit <> credit)
) WITHOUT ROWID;
