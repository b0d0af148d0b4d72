-- One schema per service (ARCHITECTURE §4). No table in one schema refers to
-- another schema: services learn each other's data from events.
CREATE SCHEMA IF NOT EXISTS auth;
CREATE SCHEMA IF NOT EXISTS catalog;
CREATE SCHEMA IF NOT EXISTS orders;

CREATE TABLE auth.users (
    user_id       uuid PRIMARY KEY,
    email         text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);
CREATE UNIQUE INDEX users_email_key ON auth.users (email);

CREATE TABLE catalog.products (
    product_id  uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog.deals (
    deal_id        uuid PRIMARY KEY,
    product_id     uuid NOT NULL REFERENCES catalog.products (product_id),
    price_cents    bigint NOT NULL CHECK (price_cents > 0),
    stock          integer NOT NULL CHECK (stock >= 0),
    per_user_limit integer NOT NULL CHECK (per_user_limit > 0),
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    status         text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'paused', 'ended')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deals_window CHECK (ends_at > starts_at)
);
CREATE INDEX deals_product_id_idx ON catalog.deals (product_id);
CREATE INDEX deals_window_idx ON catalog.deals (starts_at, ends_at);

-- Written only by the order-writer, from orders.intents. order_id is the
-- log key, so a redelivered intent is a no-op (ON CONFLICT DO NOTHING).
CREATE TABLE orders.orders (
    order_id         uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    deal_id          uuid NOT NULL,
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents > 0),
    status           text NOT NULL CHECK (status IN ('confirmed', 'expired')),
    idempotency_key  text,
    intent_event_id  uuid NOT NULL,
    reserved_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_idempotency_key UNIQUE (user_id, deal_id, idempotency_key)
);
CREATE INDEX orders_deal_id_idx ON orders.orders (deal_id);
CREATE INDEX orders_user_id_idx ON orders.orders (user_id);
