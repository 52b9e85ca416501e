-- Money: what the Stripe flows need beyond the marketplace's payments table.

-- The charge behind a succeeded PaymentIntent (its latest_charge): the
-- source_transaction of the payout and what a refund reverses.
ALTER TABLE payments ADD COLUMN stripe_charge_id text
    CHECK (length(stripe_charge_id) BETWEEN 1 AND 255);
-- The transfer reversal of a payout refunded after release.
ALTER TABLE payments ADD COLUMN stripe_transfer_reversal_id text UNIQUE
    CHECK (length(stripe_transfer_reversal_id) BETWEEN 1 AND 255);

-- Set (and committed) before Gala asks Stripe for a refund of the charge,
-- cleared when Stripe refuses it: while set, no payout may start, and the
-- charge.refunded webhook knows the refund is Gala's own.
ALTER TABLE payments ADD COLUMN refund_started_at timestamptz;

-- Payout attempts that Stripe definitely refused. The payout row of a
-- refused attempt is deleted (the booking stays completed), so the count
-- lives on the booking: the next attempt n = payout_failures + 1 uses the
-- Stripe idempotency key release_payment:{id}:{n}, since Stripe replays the
-- stored refusal of a reused key.
ALTER TABLE event_services ADD COLUMN payout_failures integer NOT NULL DEFAULT 0
    CHECK (payout_failures >= 0);

-- The "created" time of the last account.updated event applied to the
-- provider: an older event delivered late never overwrites a newer state.
ALTER TABLE service_providers ADD COLUMN stripe_account_event_at timestamptz;

-- Stripe webhook events already processed: the id is inserted in the same
-- transaction as the event's effect, so a redelivery finds it and does
-- nothing (at-least-once delivery, exactly-once effect).
CREATE TABLE stripe_events (
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
    type        text NOT NULL CHECK (length(type) BETWEEN 1 AND 255),
    created     timestamptz,              -- the event's own "created"
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_events_received_at_idx ON stripe_events (received_at);

-- Webhooks find a charge by its PaymentIntent (unique already) or by the
-- charge id (charge.refunded).
CREATE INDEX payments_stripe_charge_idx ON payments (stripe_charge_id)
    WHERE stripe_charge_id IS NOT NULL;
