-- Transactional outboxes, read models and one PostgreSQL role per service
-- (ARCHITECTURE §4, §5 "Outbox relay"). Every write that changes a user,
-- product or deal inserts its event into its schema's outbox in the same
-- transaction; a relay publishes the outbox to the log and deletes what the
-- broker acknowledged. Each aggregate carries a `version` that every change
-- increments under the row's lock, so events of one aggregate are numbered
-- in commit order and consumers can skip what they already applied.

-- Auth ---------------------------------------------------------------------
ALTER TABLE auth.users
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'blocked')),
    -- Access tokens issued before this instant are refused (password change).
    ADD COLUMN sessions_revoked_before timestamptz,
    ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- HS256 signing keys, newest active. A retired key still verifies the
-- tokens it signed until they expire.
CREATE TABLE auth.signing_keys (
    kid        text PRIMARY KEY,
    secret     text NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON auth.signing_keys ((true)) WHERE retired_at IS NULL;

-- Catalog ------------------------------------------------------------------
ALTER TABLE catalog.products
    ADD COLUMN version bigint NOT NULL DEFAULT 1,
    ADD COLUMN deleted_at timestamptz;

ALTER TABLE catalog.deals
    -- Units confirmed, learned from orders.status (never written by orders).
    -- No CHECK against stock: a consumer must never be stuck retrying a
    -- confirmation; `flashdeal audit` reports sold_count > stock instead.
    ADD COLUMN sold_count integer NOT NULL DEFAULT 0 CHECK (sold_count >= 0),
    ADD COLUMN version bigint NOT NULL DEFAULT 1;

-- The confirmed orders already counted in sold_count: a redelivered
-- OrderConfirmed finds its order here and counts nothing.
CREATE TABLE catalog.sold_orders (
    order_id   uuid PRIMARY KEY,
    deal_id    uuid NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Orders: the order-writer's read model of the catalog ------------------
CREATE TABLE orders.deals (
    deal_id        uuid PRIMARY KEY,
    price_cents    bigint NOT NULL,
    per_user_limit integer NOT NULL,
    stock          integer NOT NULL,
    status         text NOT NULL,
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    version        bigint NOT NULL
);

-- Outboxes (Debezium outbox-router columns + event_id) -------------------
CREATE TABLE auth.outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    aggregatetype text NOT NULL,
    aggregateid   text NOT NULL,
    type          text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE catalog.outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid NOT NULL UNIQUE,
    aggregatetype text NOT NULL,
    aggregateid   text NOT NULL,
    type          text NOT NULL,
    payload       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Wake the relay on commit (NOTIFY is delivered at commit); the relay also
-- polls, so a lost notification only delays.
CREATE FUNCTION auth.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('auth_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON auth.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION auth.outbox_notify();

CREATE FUNCTION catalog.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('catalog_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON catalog.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION catalog.outbox_notify();

-- One role per service, limited to its schema ----------------------------
-- Roles are cluster-wide; several databases (tests) may create them at once.
DO $$
DECLARE r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['flashdeal_auth', 'flashdeal_catalog', 'flashdeal_orders'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA auth TO flashdeal_auth;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA auth TO flashdeal_auth;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA auth TO flashdeal_auth;

GRANT USAGE ON SCHEMA catalog TO flashdeal_catalog;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA catalog TO flashdeal_catalog;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA catalog TO flashdeal_catalog;

GRANT USAGE ON SCHEMA orders TO flashdeal_orders;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA orders TO flashdeal_orders;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA orders TO flashdeal_orders;

-- Tables a later migration adds get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA auth GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flashdeal_auth;
ALTER DEFAULT PRIVILEGES IN SCHEMA catalog GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flashdeal_catalog;
ALTER DEFAULT PRIVILEGES IN SCHEMA orders GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flashdeal_orders;
