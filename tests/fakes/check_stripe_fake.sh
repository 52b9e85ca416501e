#!/bin/sh
# The Stripe fake's own tests (make check): its wire format, failure modes
# and webhook signatures, the signatures also checked by stripe-python
# (Debian's python3-stripe, so Debian's python3).
exec /usr/bin/python3 "$(dirname "$0")/test_stripe_fake.py"
