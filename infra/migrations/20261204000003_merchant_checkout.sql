-- Merchant checkout (e-wallet spec §7.2): the merchants partner shops are registered as,
-- the checkout's view of their orders (kept by the checkout process's tracker), the
-- callback attempts, the daily registries, and the bank-system simulator's books.

CREATE TABLE merchants (
    -- The merchant's client id: the partition key of its orders and settlement wallet.
    merchant_id          uuid PRIMARY KEY,
    -- The subject of the partner token the merchant's shop calls with.
    partner_id           text NOT NULL UNIQUE,
    name                 text NOT NULL,
    callback_url         text NOT NULL,
    -- The HMAC-SHA256 key of the callbacks' signatures (hex).
    callback_secret      text NOT NULL,
    -- The processing centre's service whose receipt template the receipt uses.
    service_id           text NOT NULL,
    settlement_wallet_id uuid NOT NULL,
    currency             text NOT NULL,
    created_by           text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE merchant_orders (
    order_id          uuid PRIMARY KEY,
    merchant_id       uuid NOT NULL,
    number            text NOT NULL,
    amount            numeric(20, 2) NOT NULL,
    currency          text NOT NULL,
    description       text NOT NULL,
    status            text NOT NULL,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    payment_id        uuid,
    source            text,
    payer_client_id   uuid,
    masked_pan        text,
    paid_at           timestamptz,
    captured_at       timestamptz,
    notified_at       timestamptz,
    callback_attempts integer NOT NULL DEFAULT 0,
    UNIQUE (merchant_id, number)
);
CREATE INDEX merchant_orders_paid ON merchant_orders (merchant_id, paid_at) WHERE paid_at IS NOT NULL;

-- Every callback attempt and how the merchant answered (status NULL: no answer).
CREATE TABLE merchant_callback_attempts (
    order_id     uuid NOT NULL,
    attempt      integer NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    http_status  integer,
    error        text,
    PRIMARY KEY (order_id, attempt)
);

-- The daily registry files of a merchant's operations.
CREATE TABLE merchant_registries (
    merchant_id uuid NOT NULL,
    day         date NOT NULL,
    location    text NOT NULL,
    operations  integer NOT NULL,
    total       numeric(20, 2) NOT NULL,
    sha256      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (merchant_id, day)
);

-- The bank-system simulator's books: one row per authorisation, idempotent by payment id.
CREATE TABLE simulator_bank_operations (
    payment_id       uuid PRIMARY KEY,
    authorisation_id text NOT NULL UNIQUE,
    masked_pan       text NOT NULL,
    amount           numeric(20, 2) NOT NULL,
    currency         text NOT NULL,
    -- authorised | captured | released | declined
    status           text NOT NULL,
    reason           text,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
