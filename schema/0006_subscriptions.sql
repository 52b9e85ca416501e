-- Stripe subscriptions of users (seed: Critical Gap 2), kept in sync from
-- the API's answers and the customer.subscription.* webhooks.
CREATE TABLE subscriptions (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                uuid NOT NULL REFERENCES users (id),
    stripe_subscription_id text NOT NULL UNIQUE,
    price_id               text NOT NULL,
    status                 text NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired',
                               'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    -- Stripe's time (unix seconds) of the state stored here: an event
    -- created earlier describes older state and is not applied.
    stripe_state_at        bigint NOT NULL DEFAULT 0,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, created_at DESC, id);
