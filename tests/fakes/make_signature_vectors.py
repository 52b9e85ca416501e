#!/usr/bin/python3
"""Regenerate stripe_signature_vectors.json with Stripe's own Python library.

Needs Debian's python3-stripe (apt-get install -y python3-stripe) only to
regenerate; the JSON it writes is committed and read by the tests of the fake
and of Gala's webhook verifier.  Signatures are computed and every verdict is
checked by stripe.WebhookSignature / stripe.Webhook.construct_event, not by
our own code, so the vectors are an independent reference.

Each vector: secret, timestamp, payload (the exact raw body), header (the exact
Stripe-Signature value), now (the clock to verify at), stripe_python_valid
(what stripe-python 5 says with its default 300 s tolerance) and valid (Gala's
rule, API.md: a v1 matches and |now - t| <= 300; it differs from
stripe-python only for timestamps in the future, which the library accepts).

    /usr/bin/python3 tests/fakes/make_signature_vectors.py > tests/fakes/stripe_signature_vectors.json
"""

import json
import sys
from unittest import mock

import stripe
from stripe import error, webhook

SECRET = "whsec_test_gala_primary_0123456789abcdef"
OTHER = "whsec_test_gala_rolled_fedcba9876543210"
T = 1700000000


def event(eid, etype, obj):
    return json.dumps({"id": eid, "object": "event", "api_version": "2022-11-15", "created": T,
                       "data": {"object": obj}, "livemode": False, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}, "type": etype},
                      indent=2)


PI = {"id": "pi_3GalaTest0000000000000001", "object": "payment_intent", "amount": 12500,
      "currency": "usd", "status": "succeeded", "latest_charge": "ch_3GalaTest000000000000001",
      "metadata": {"event_service_id": "42"}, "transfer_group": "42"}
PAYLOAD = event("evt_1GalaVector00000000000001", "payment_intent.succeeded", PI)
UNICODE = event("evt_1GalaVector00000000000002", "customer.subscription.updated",
                {"id": "sub_1GalaTest", "object": "subscription", "status": "active",
                 "metadata": {"note": "Café – ünïcødé ✓"}})


def v1(payload, secret, t):
    return stripe.WebhookSignature._compute_signature("%d.%s" % (t, payload), secret)


def stripe_says(payload, header, secret, now):
    with mock.patch.object(webhook.time, "time", return_value=now):
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, 300)
        except error.SignatureVerificationError:
            return False
        stripe.Webhook.construct_event(payload, header, secret)  # the full path parses too
        return True


def case(name, description, payload, header, secret, t, now, expect):
    ok = stripe_says(payload, header, secret, now)
    gala = ok and abs(now - t) <= 300
    if gala != expect:
        sys.exit("vector %s: expected valid=%s, got %s" % (name, expect, gala))
    return {"name": name, "description": description, "secret": secret, "timestamp": t,
            "now": now, "payload": payload, "header": header,
            "stripe_python_valid": ok, "valid": gala}


def main():
    good = v1(PAYLOAD, SECRET, T)
    vectors = [
        case("valid", "one v1 signed with the secret", PAYLOAD,
             "t=%d,v1=%s" % (T, good), SECRET, T, T + 5, True),
        case("valid_test_mode_v0", "Stripe test mode adds a v0 entry; only v1 counts", PAYLOAD,
             "t=%d,v1=%s,v0=%s" % (T, good, "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"),
             SECRET, T, T + 5, True),
        case("wrong_secret", "signed with another secret", PAYLOAD,
             "t=%d,v1=%s" % (T, v1(PAYLOAD, OTHER, T)), SECRET, T, T + 5, False),
        case("tampered_payload", "amount changed after signing", PAYLOAD.replace("12500", "12501"),
             "t=%d,v1=%s" % (T, good), SECRET, T, T + 5, False),
        case("tampered_whitespace", "a trailing newline added after signing", PAYLOAD + "\n",
             "t=%d,v1=%s" % (T, good), SECRET, T, T + 5, False),
        case("tampered_timestamp", "t changed, signature kept", PAYLOAD,
             "t=%d,v1=%s" % (T + 1, good), SECRET, T + 1, T + 5, False),
        case("expired", "signed 301 s before now", PAYLOAD,
             "t=%d,v1=%s" % (T, good), SECRET, T, T + 301, False),
        case("edge_300s", "signed exactly 300 s before now: still accepted", PAYLOAD,
             "t=%d,v1=%s" % (T, good), SECRET, T, T + 300, True),
        case("future_301s", "t is 301 s ahead of now: stripe-python accepts, Gala's +-300 s "
             "rule rejects", PAYLOAD, "t=%d,v1=%s" % (T, good), SECRET, T, T - 301, False),
        case("multiple_v1_second_matches", "while a secret is rolled Stripe sends one v1 per "
             "secret; any match is enough", PAYLOAD,
             "t=%d,v1=%s,v1=%s" % (T, v1(PAYLOAD, OTHER, T), good), SECRET, T, T + 5, True),
        case("multiple_v1_verified_with_other", "same header, verified with the other secret",
             PAYLOAD, "t=%d,v1=%s,v1=%s" % (T, v1(PAYLOAD, OTHER, T), good), OTHER, T, T + 5,
             True),
        case("multiple_v1_none_matches", "two v1 entries, neither from the secret", PAYLOAD,
             "t=%d,v1=%s,v1=%s" % (T, v1(PAYLOAD, OTHER, T), "0" * 64), SECRET, T, T + 5, False),
        case("v0_only", "a correct HMAC under scheme v0 is not accepted", PAYLOAD,
             "t=%d,v0=%s" % (T, good), SECRET, T, T + 5, False),
        case("no_timestamp", "header without t=", PAYLOAD, "v1=%s" % good, SECRET, T, T + 5,
             False),
        case("uppercase_hex", "hex compared as text: upper case does not match", PAYLOAD,
             "t=%d,v1=%s" % (T, good.upper()), SECRET, T, T + 5, False),
        case("unicode_payload", "UTF-8 body with non-ASCII text, signed over its bytes", UNICODE,
             "t=%d,v1=%s" % (T, v1(UNICODE, SECRET, T)), SECRET, T, T + 5, True),
    ]
    json.dump({"generator": "tests/fakes/make_signature_vectors.py",
               "library": "python3-stripe %s (Debian)" % stripe.version.VERSION,
               "tolerance_seconds": 300, "vectors": vectors},
              sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
