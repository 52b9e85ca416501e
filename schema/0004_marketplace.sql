-- The marketplace: provider profiles, events, bookings of providers for
-- events (event_services) and the money records of a booking (payments).
-- Every list the API serves reads newest first, (created_at DESC, id DESC),
-- so each list has an index in that order behind its filter columns.
-- Rows are never deleted by the application: a cancelled event keeps its
-- bookings and their payments, hence no ON DELETE CASCADE below.

CREATE TABLE service_providers (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- One profile per user.
    user_id           uuid NOT NULL UNIQUE REFERENCES users (id),
    business_name     text NOT NULL CHECK (length(business_name) BETWEEN 1 AND 200),
    category          text NOT NULL CHECK (category IN ('catering', 'music', 'photography',
                          'venue', 'decor', 'planning', 'other')),
    description       text CHECK (length(description) BETWEEN 1 AND 2000),
    city              text NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    -- Stripe Connect account (set by onboarding) and whether Stripe lets it
    -- receive payouts (set by the account.updated webhook).
    stripe_account_id text UNIQUE CHECK (length(stripe_account_id) BETWEEN 1 AND 255),
    payouts_enabled   boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX service_providers_list_idx ON service_providers (created_at DESC, id DESC);
CREATE INDEX service_providers_category_idx
    ON service_providers (category, created_at DESC, id DESC);
-- ?city= matches case-insensitively.
CREATE INDEX service_providers_city_idx
    ON service_providers (lower(city), created_at DESC, id DESC);

CREATE TABLE events (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id     uuid NOT NULL REFERENCES users (id),
    title        text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description  text CHECK (length(description) BETWEEN 1 AND 5000),
    city         text CHECK (length(city) BETWEEN 1 AND 100),
    venue        text CHECK (length(venue) BETWEEN 1 AND 200),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz,
    budget_cents bigint CHECK (budget_cents >= 0),
    currency     text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
    status       text NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'published', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- Named: the service maps a violation to 422 on ends_at/starts_at.
    CONSTRAINT events_time_order CHECK (ends_at > starts_at)
);
CREATE INDEX events_owner_idx ON events (owner_id, created_at DESC, id DESC);
CREATE INDEX events_list_idx ON events (created_at DESC, id DESC);

-- A booking: one provider for one event, at a price fixed when it is made.
-- status follows the machine of API.md (src/services/bookings.c holds the
-- transitions); every value of it is listed here.
CREATE TABLE event_services (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id            uuid NOT NULL REFERENCES events (id),
    service_provider_id uuid NOT NULL REFERENCES service_providers (id),
    description         text NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    -- Stripe refuses a zero charge, so a booking costs something.
    amount_cents        bigint NOT NULL CHECK (amount_cents > 0),
    currency            text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    platform_fee_cents  bigint NOT NULL
                        CHECK (platform_fee_cents >= 0 AND platform_fee_cents <= amount_cents),
    status              text NOT NULL DEFAULT 'requested'
                        CHECK (status IN ('requested', 'accepted', 'declined', 'cancelled',
                            'payment_pending', 'paid', 'completed', 'released', 'refunded')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- The bookings of an event (its list, the visibility check of a provider,
-- the state check of DELETE /api/events/{id}).
CREATE INDEX event_services_event_idx
    ON event_services (event_id, created_at DESC, id DESC);
CREATE INDEX event_services_provider_idx
    ON event_services (service_provider_id, created_at DESC, id DESC);

-- The charge (customer_payment) and the payout (service_payment) of a
-- booking, at most one of each: the unique key is what makes a second
-- payout impossible even when two releases race.
CREATE TABLE payments (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    event_service_id         uuid NOT NULL REFERENCES event_services (id),
    payment_type             text NOT NULL
                             CHECK (payment_type IN ('customer_payment', 'service_payment')),
    -- A charge is paid by the event owner; a payout by the platform (NULL).
    payer_id                 uuid REFERENCES users (id),
    payee_id                 uuid NOT NULL REFERENCES users (id),
    amount_cents             bigint NOT NULL CHECK (amount_cents >= 0),
    currency                 text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status                   text NOT NULL
                             CHECK (status IN ('requires_payment', 'succeeded', 'failed',
                                 'refunded', 'payout_started', 'released', 'reversed')),
    stripe_payment_intent_id text UNIQUE,
    stripe_transfer_id       text UNIQUE,
    stripe_refund_id         text,
    -- Stripe idempotency keys of payouts: attempt n > 1 uses
    -- release_payment:{event_service_id}:{n}.
    attempt                  integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_service_id, payment_type),
    CONSTRAINT payments_payer_by_type
        CHECK ((payment_type = 'customer_payment') = (payer_id IS NOT NULL)),
    CONSTRAINT payments_status_by_type CHECK (
        (payment_type = 'customer_payment'
            AND status IN ('requires_payment', 'succeeded', 'failed', 'refunded'))
        OR (payment_type = 'service_payment'
            AND status IN ('payout_started', 'released', 'reversed')))
);
CREATE INDEX payments_payer_idx ON payments (payer_id, created_at DESC, id DESC);
CREATE INDEX payments_payee_idx ON payments (payee_id, created_at DESC, id DESC);
CREATE INDEX payments_list_idx ON payments (created_at DESC, id DESC);
-- gala maintenance looks for payouts stuck in payout_started.
CREATE INDEX payments_payout_started_idx ON payments (updated_at)
    WHERE status = 'payout_started';
