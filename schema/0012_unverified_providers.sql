-- A provider profile and its Stripe account now need a verified email
-- (API.md, Service providers). Accounts made before that rule for a user
-- who never verified the address are detached: payouts may only reach an
-- account onboarded by whoever owns the address. The profile stays; once
-- its user verifies, onboarding makes a new account.
UPDATE service_providers sp
SET stripe_account_id = NULL, payouts_enabled = false, updated_at = now()
FROM users u
WHERE u.id = sp.user_id AND NOT u.email_verified AND sp.stripe_account_id IS NOT NULL;
