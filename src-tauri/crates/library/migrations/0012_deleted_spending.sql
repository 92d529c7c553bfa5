-- What deleted avatars' paid requests cost: deleting an avatar never takes money out of the
-- ledger, so the monthly budget and the spending list still count it. One row per paid training
-- or pack request, written in the transaction that deletes the avatar.
CREATE TABLE deleted_spending (
    -- `YYYY-MM` of the training or pack, as the ledger groups it.
    month       TEXT NOT NULL,
    confirmed   REAL NOT NULL,
    billed      REAL,
    deleted_at  TEXT NOT NULL
);
CREATE INDEX deleted_spending_by_month ON deleted_spending (month);
