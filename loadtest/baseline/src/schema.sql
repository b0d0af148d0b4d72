-- The control group's tables, created at start with IF NOT EXISTS (no
-- migrations: this schema is disposable benchmark state). Everything lives
-- in its own schema so it can share a server with FlashDeal.
CREATE SCHEMA IF NOT EXISTS baseline;

-- BENCHMARK ONLY: `password` is stored IN PLAIN TEXT so that k6 can sign up
-- thousands of users quickly. Never reuse this table design for real users.
CREATE TABLE IF NOT EXISTS baseline.users (
    user_id    uuid PRIMARY KEY,
    email      text NOT NULL UNIQUE CHECK (email = lower(email)),
    password   text NOT NULL,
    role       text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- `stock` is what is left (decremented by every order, under FOR UPDATE);
-- `initial_stock` is what the deal was created with (the view's `stock`).
CREATE TABLE IF NOT EXISTS baseline.deals (
    deal_id             uuid PRIMARY KEY,
    product_id          uuid NOT NULL,
    product_name        text NOT NULL CHECK (length(product_name) BETWEEN 1 AND 200),
    product_description text NOT NULL DEFAULT '',
    price_cents         bigint NOT NULL CHECK (price_cents > 0),
    initial_stock       integer NOT NULL CHECK (initial_stock >= 0),
    stock               integer NOT NULL CHECK (stock >= 0),
    per_user_limit      integer NOT NULL CHECK (per_user_limit > 0),
    starts_at           timestamptz NOT NULL,
    ends_at             timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deals_window CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS deals_window_idx ON baseline.deals (starts_at, ends_at);

-- An order is confirmed in the same transaction that takes the stock.
CREATE TABLE IF NOT EXISTS baseline.orders (
    order_id         uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES baseline.users (user_id),
    deal_id          uuid NOT NULL REFERENCES baseline.deals (deal_id),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
    status           text NOT NULL DEFAULT 'confirmed' CHECK (status = 'confirmed'),
    idempotency_key  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- Its index (user_id, deal_id, …) also serves the per-user sum.
    CONSTRAINT orders_idempotency_key UNIQUE (user_id, deal_id, idempotency_key)
);
