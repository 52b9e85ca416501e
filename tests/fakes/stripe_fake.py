#!/usr/bin/python3
"""A fake Stripe API server for Gala's tests (standard library only).

It speaks Stripe's wire format for the endpoints Gala uses -- form-encoded
bodies with nested keys, Bearer keys, Stripe's JSON objects and error objects,
Idempotency-Key replay -- so the product's one real Stripe client can be pointed
at it with STRIPE_API_BASE.  Under /_fake/ a control API (no auth, JSON) lets a
test reset state, read the request log, inject failures, change objects as
Stripe would, and sign and deliver webhook events.

    stripe_fake.py --port 0 [--host 127.0.0.1] [--api-key sk_test_fake]
                   [--state-dir DIR] [--webhook-url URL --webhook-secret whsec_..]
                   [--ca-file PEM]

Prints "ready <port>" on stdout once listening.
"""

import argparse
import base64
import collections
import copy
import fnmatch
import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_VERSION = "2022-11-15"       # the version whose shapes we mimic (latest_charge, no charges list)
MAX_BODY = 1 << 20               # Stripe refuses huge bodies too; keeps memory bounded
MAX_REQUESTS = 10000             # request log entries kept (oldest dropped)
MAX_OBJECTS = 100000             # stored objects kept (oldest evicted)
MAX_IDEMPOTENCY = 100000         # idempotency results kept (Stripe prunes after 24 h; we prune by count)
DEFAULT_HANG_MS = 60000
MIN_CHARGE = {"usd": 50, "eur": 50, "gbp": 30, "cad": 50, "aud": 50}

OBJECT_PREFIXES = {
    "pi": "payment_intent", "ch": "charge", "tr": "transfer", "trr": "transfer_reversal",
    "re": "refund", "acct": "account", "cus": "customer", "sub": "subscription",
    "in": "invoice", "price": "price", "si": "subscription_item", "evt": "event",
}

# Top-level parameters each endpoint accepts.  Stripe answers anything else with
# parameter_unknown, which is how a typo in the C client gets caught here too.
_LIST = "limit starting_after ending_before created expand "
ALLOWED = {k: set(v.split()) for k, v in {
    "pi_create": "amount currency automatic_payment_methods capture_method confirm "
                 "confirmation_method customer description error_on_requires_action mandate "
                 "mandate_data metadata off_session on_behalf_of payment_method "
                 "payment_method_data payment_method_options payment_method_types receipt_email "
                 "return_url setup_future_usage shipping statement_descriptor "
                 "statement_descriptor_suffix transfer_data transfer_group "
                 "application_fee_amount expand",
    "pi_confirm": "payment_method return_url off_session setup_future_usage "
                  "payment_method_options payment_method_data receipt_email mandate_data "
                  "error_on_requires_action shipping expand",
    "pi_cancel": "cancellation_reason expand",
    "transfer": "amount currency destination description metadata source_transaction "
                "source_type transfer_group expand",
    "reversal": "amount description metadata refund_application_fee expand",
    "refund": "amount charge currency customer instructions_email metadata origin "
              "payment_intent reason refund_application_fee reverse_transfer expand",
    "account": "type country email business_type business_profile capabilities company "
               "individual metadata settings tos_acceptance default_currency external_account "
               "documents account_token controller expand",
    "account_link": "account refresh_url return_url type collect collection_options expand",
    "customer": "address balance coupon description email invoice_prefix invoice_settings "
                "metadata name next_invoice_sequence payment_method phone preferred_locales "
                "promotion_code shipping source tax tax_exempt tax_id_data test_clock expand",
    "sub_create": "customer items add_invoice_items application_fee_percent automatic_tax "
                  "backdate_start_date billing_cycle_anchor billing_thresholds cancel_at "
                  "cancel_at_period_end collection_method coupon currency days_until_due "
                  "default_payment_method default_source default_tax_rates description "
                  "metadata off_session on_behalf_of payment_behavior payment_settings "
                  "pending_invoice_item_interval promotion_code proration_behavior "
                  "transfer_data trial_end trial_from_plan trial_period_days trial_settings "
                  "expand",
    "sub_update": "cancel_at_period_end cancel_at cancellation_details metadata "
                  "proration_behavior proration_date description items payment_behavior "
                  "default_payment_method pause_collection trial_end expand",
    "sub_cancel": "invoice_now prorate cancellation_details expand",
    "get": "expand",
    "list_transfers": _LIST + "destination transfer_group",
    "list_refunds": _LIST + "charge payment_intent",
    "list_plain": _LIST,
}.items()}


class StripeError(Exception):
    """A Stripe error object.  `store` says whether an idempotent request keeps
    it: Stripe saves results only once an endpoint began executing, so
    parameter validation errors are not saved and a corrected retry runs."""

    def __init__(self, status, etype, message, code=None, param=None, store=True, extra=None):
        super().__init__(message)
        self.status, self.store = status, store
        self.error = {"type": etype, "message": message}
        if code:
            self.error["code"] = code
            self.error["doc_url"] = "https://stripe.com/docs/error-codes/" + code.replace("_", "-")
        if param:
            self.error["param"] = param
        self.error.update(extra or {})


def invalid(message, code=None, param=None, store=True, status=400):
    return StripeError(status, "invalid_request_error", message, code, param, store)


def missing(name, store=False):
    return invalid("Missing required param: %s." % name, "parameter_missing", name, store)


def no_such(kind, oid, param="id", store=True):
    return invalid("No such %s: '%s'" % (kind, oid), "resource_missing", param, store, 404)


def new_id(prefix, n=24):
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "_" + "".join(secrets.choice(alphabet) for _ in range(n))


# ---------------------------------------------------------------- form codec

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


def parse_form(raw):
    """Parse Stripe's form encoding into nested dicts and lists:
    metadata[a]=1 -> {"metadata": {"a": "1"}}, expand[]=x -> {"expand": ["x"]},
    items[0][price]=p -> {"items": [{"price": "p"}]}.  Raises ValueError on
    keys that contradict each other (a=1&a[b]=2)."""
    root = {}
    for name, value in urllib.parse.parse_qsl(raw, keep_blank_values=True):
        m = _KEY_RE.match(name)
        if not m:
            raise ValueError("Invalid parameter name: %s" % name)
        keys = [m.group(1)] + re.findall(r"\[([^\[\]]*)\]", m.group(2))
        node = root
        for i, k in enumerate(keys):
            if k == "":                        # "[]" appends: next free index
                k = str(len(node))
            if i == len(keys) - 1:
                if k in node:
                    raise ValueError("Duplicate parameter: %s" % name)
                node[k] = value
            else:
                child = node.setdefault(k, {})
                if not isinstance(child, dict):
                    raise ValueError("Invalid hash: %s" % name)
                node = child
    return _listify(root)


def _listify(node):
    if not isinstance(node, dict):
        return node
    out = {k: _listify(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


# ------------------------------------------------------------ param helpers

def check_params(params, allowed):
    for name in params:
        if name not in ALLOWED[allowed]:
            raise invalid("Received unknown parameter: %s" % name, "parameter_unknown", name, False)


def p_int(params, name, required=False, minimum=None):
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(v, str) or not re.fullmatch(r"-?\d+", v):
        raise invalid("Invalid integer: %s" % v, "parameter_invalid_integer", name, False)
    n = int(v)
    if minimum is not None and n < minimum:
        raise invalid("This value must be greater than or equal to %d." % minimum,
                      "parameter_invalid_integer", name, False)
    return n


def p_str(params, name, required=False):
    v = params.get(name)
    if v is None or v == "":
        if required:
            raise missing(name)
        return None
    if not isinstance(v, str):
        raise invalid("Invalid string: %s" % name, "parameter_invalid_string", name, False)
    return v


def p_bool(params, name, default=False):
    v = params.get(name)
    if v is None:
        return default
    # Case-insensitive: stripe-python sends Python's "True", and Stripe takes it.
    if not isinstance(v, str) or v.lower() not in ("true", "false"):
        raise invalid("Invalid boolean: %s" % v, "parameter_invalid_boolean", name, False)
    return v.lower() == "true"


def p_metadata(params, current=None):
    """Stripe merges metadata on update; "" clears it, "k=" removes key k."""
    md = dict(current or {})
    v = params.get("metadata")
    if v is None:
        return md
    if v == "":
        return {}
    if not isinstance(v, dict):
        raise invalid("Invalid hash", "parameter_invalid_string", "metadata", False)
    for k, val in v.items():
        if not isinstance(val, str) or len(k) > 40 or len(val) > 500:
            raise invalid("Invalid metadata[%s]" % k, "parameter_invalid_string",
                          "metadata[%s]" % k, False)
        if val == "":
            md.pop(k, None)
        else:
            md[k] = val
    if len(md) > 50:
        raise invalid("Metadata can have at most 50 keys.", None, "metadata", False)
    return md


def p_currency(params):
    c = p_str(params, "currency", required=True).lower()
    if not re.fullmatch(r"[a-z]{3}", c):
        raise invalid("Invalid currency: %s." % c, "invalid_currency", "currency", False)
    return c


# ------------------------------------------------------------------- state

class State:
    """Everything the fake remembers.  One re-entrant lock guards it all: the
    handlers are fast, so holding it across one operation makes each Stripe
    call atomic (two refunds can never together exceed a charge)."""

    def __init__(self, api_key, state_dir=None):
        self.api_key, self.state_dir = api_key, state_dir
        self.lock = threading.RLock()
        self.reset()
        self._load()

    def reset(self):
        with self.lock:
            self.objects = collections.OrderedDict()
            self.idem = collections.OrderedDict()     # (api key, idem key) -> entry
            self.requests = collections.deque(maxlen=MAX_REQUESTS)
            self.rules = []
            self.seq = 0
            self.rule_seq = 0
            # Hanging requests wait on this event; reset() and shutdown wake them.
            old = getattr(self, "wake", None)
            self.wake = threading.Event()
            if old:
                old.set()

    def next_rule_id(self):
        self.rule_seq += 1
        return self.rule_seq

    def put(self, obj):
        self.objects[obj["id"]] = obj
        self.objects.move_to_end(obj["id"])
        while len(self.objects) > MAX_OBJECTS:
            self.objects.popitem(last=False)
        return obj

    def get(self, oid, kind, param="id", store=True):
        obj = self.objects.get(oid) if isinstance(oid, str) else None
        if obj is None or obj.get("object") != kind:
            raise no_such(kind, oid, param, store)
        return obj

    def of_type(self, kind):
        return [o for o in reversed(self.objects.values()) if o.get("object") == kind]

    # Persistence is optional and crude on purpose: a JSON snapshot of objects
    # and finished idempotency results, rewritten atomically after each change,
    # so a restarted fake still replays keys the client has used.
    def save(self):
        if not self.state_dir:
            return
        with self.lock:
            snap = {"objects": list(self.objects.values()),
                    "idem": [[k[0], k[1], v] for k, v in self.idem.items() if v["state"] == "done"]}
            path = os.path.join(self.state_dir, "stripe_fake_state.json")
            with open(path + ".tmp", "w") as f:
                json.dump(snap, f)
            os.replace(path + ".tmp", path)

    def _load(self):
        path = os.path.join(self.state_dir or "", "stripe_fake_state.json")
        if self.state_dir and os.path.exists(path):
            with open(path) as f:
                snap = json.load(f)
            for o in snap["objects"]:
                self.objects[o["id"]] = o
            for api_key, key, entry in snap["idem"]:
                self.idem[(api_key, key)] = entry


# ------------------------------------------------------------- object shapes

def expand(state, obj, paths):
    """Apply Stripe's expand[]: replace id strings along dotted paths by the
    objects they name (copies, so stored objects keep plain ids)."""
    obj = copy.deepcopy(obj)
    for path in paths or []:
        _expand_at(state, obj, path.split("."))
    return obj


def _expand_at(state, node, parts):
    if isinstance(node, list):
        for item in node:
            _expand_at(state, item, parts)
        return
    if not isinstance(node, dict) or not parts:
        return
    head, rest = parts[0], parts[1:]
    val = node.get(head)
    if isinstance(val, str) and val in state.objects:
        val = node[head] = copy.deepcopy(state.objects[val])
    _expand_at(state, val, rest)


def base(prefix, kind, metadata=None):
    return {"id": new_id(prefix), "object": kind, "created": int(time.time()),
            "livemode": False, "metadata": metadata or {}}


def make_charge(state, pi, status="succeeded"):
    ch = base("ch", "charge")
    ok = status == "succeeded"
    ch.update({
        "amount": pi["amount"], "amount_captured": pi["amount"] if ok else 0,
        "amount_refunded": 0, "balance_transaction": new_id("txn") if ok else None,
        "captured": ok, "currency": pi["currency"], "customer": pi["customer"],
        "description": pi["description"], "failure_code": None if ok else "card_declined",
        "failure_message": None if ok else "Your card was declined.",
        "paid": ok, "payment_intent": pi["id"], "payment_method": new_id("pm"),
        "refunded": False, "status": status, "transfer_group": pi["transfer_group"],
        "metadata": dict(pi["metadata"]),
    })
    return state.put(ch)


def pi_succeed(state, pi):
    ch = make_charge(state, pi)
    pi.update({"status": "succeeded", "amount_received": pi["amount"], "latest_charge": ch["id"],
               "last_payment_error": None, "payment_method": ch["payment_method"]})
    # A subscription's first invoice is paid by its payment intent: follow through
    # the way Stripe does, so the subscription turns active.
    inv = state.objects.get(pi.get("invoice") or "")
    if inv:
        inv.update({"status": "paid", "paid": True, "amount_paid": inv["amount_due"],
                    "amount_remaining": 0})
        sub = state.objects.get(inv.get("subscription") or "")
        if sub and sub["status"] in ("incomplete", "past_due"):
            sub["status"] = "active"
    return pi


def pi_decline(state, pi):
    ch = make_charge(state, pi, status="failed")
    pi.update({"status": "requires_payment_method", "latest_charge": ch["id"],
               "last_payment_error": {
                   "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                   "message": "Your card was declined.", "charge": ch["id"]}})
    return ch


def new_payment_intent(state, amount, currency, **fields):
    pi = base("pi", "payment_intent", fields.pop("metadata", None))
    pi.update({
        "amount": amount, "amount_capturable": 0, "amount_received": 0,
        "application_fee_amount": None, "automatic_payment_methods": None,
        "canceled_at": None, "cancellation_reason": None, "capture_method": "automatic",
        "confirmation_method": "automatic", "currency": currency, "customer": None,
        "description": None, "invoice": None, "last_payment_error": None, "latest_charge": None,
        "next_action": None, "on_behalf_of": None, "payment_method": None,
        "payment_method_types": ["card"], "receipt_email": None, "setup_future_usage": None,
        "status": "requires_payment_method", "transfer_data": None, "transfer_group": None,
    })
    pi["client_secret"] = "%s_secret_%s" % (pi["id"], secrets.token_urlsafe(18).replace("-", "x"))
    pi.update(fields)
    return state.put(pi)


def price_for(state, pid, param):
    """Prices are not created through this fake: any price_ id is taken as a
    monthly 1000-cent USD price unless a test stored one with /_fake/objects."""
    if not isinstance(pid, str) or not pid.startswith("price_"):
        raise no_such("price", pid, param, store=False)
    if pid in state.objects:
        return state.objects[pid]
    return state.put({"id": pid, "object": "price", "active": True, "currency": "usd",
                      "unit_amount": 1000, "type": "recurring", "livemode": False,
                      "recurring": {"interval": "month", "interval_count": 1},
                      "product": "prod_" + pid[6:], "created": int(time.time()), "metadata": {}})


# ------------------------------------------------------------------ handlers
# Each takes (state, params, *path ids) and returns (status, object).  They run
# with the state lock held.

def create_pi(st, p):
    check_params(p, "pi_create")
    amount = p_int(p, "amount", required=True, minimum=1)
    currency = p_currency(p)
    if amount < MIN_CHARGE.get(currency, 1):
        raise invalid("Amount must be at least %d %s" % (MIN_CHARGE[currency], currency),
                      "amount_too_small", "amount", False)
    if p.get("customer"):
        st.get(p["customer"], "customer", "customer", False)
    pi = new_payment_intent(st, amount, currency, metadata=p_metadata(p),
                            transfer_group=p_str(p, "transfer_group"),
                            description=p_str(p, "description"),
                            customer=p_str(p, "customer"),
                            receipt_email=p_str(p, "receipt_email"))
    if p_bool(p, "confirm"):
        return confirm_pi(st, {"payment_method": p.get("payment_method")}, pi["id"])
    return 200, pi


def confirm_pi(st, p, pid):
    check_params(p, "pi_confirm")
    pi = st.get(pid, "payment_intent")
    if pi["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise invalid("You cannot confirm this PaymentIntent because it has a status of %s."
                      % pi["status"], "payment_intent_unexpected_state")
    pm = p_str(p, "payment_method") or "pm_card_visa"
    # Stripe's test payment methods: the "chargeDeclined" ones decline.
    if "chargeDeclined" in pm or "Decline" in pm:
        ch = pi_decline(st, pi)
        raise StripeError(402, "card_error", "Your card was declined.", "card_declined",
                          extra={"decline_code": "generic_decline", "charge": ch["id"],
                                 "payment_intent": copy.deepcopy(pi)})
    return 200, pi_succeed(st, pi)


def cancel_pi(st, p, pid):
    check_params(p, "pi_cancel")
    pi = st.get(pid, "payment_intent")
    if pi["status"] in ("succeeded", "canceled"):
        raise invalid("You cannot cancel this PaymentIntent because it has a status of %s. "
                      "Only a PaymentIntent with one of the following statuses may be canceled: "
                      "requires_payment_method, requires_capture, requires_confirmation, "
                      "requires_action, processing." % pi["status"],
                      "payment_intent_unexpected_state")
    pi.update({"status": "canceled", "canceled_at": int(time.time()),
               "cancellation_reason": p_str(p, "cancellation_reason")})
    return 200, pi


def create_transfer(st, p):
    check_params(p, "transfer")
    amount = p_int(p, "amount", required=True, minimum=1)
    currency = p_currency(p)
    dest = p_str(p, "destination", required=True)
    if not dest.startswith("acct_"):
        raise no_such("destination", dest, "destination", False)
    acct = st.objects.get(dest)
    # An account the fake knows must be able to receive transfers, as at Stripe;
    # a bare acct_ string the fake never saw is taken as a ready account.
    if acct and not (acct.get("payouts_enabled")
                     or acct.get("capabilities", {}).get("transfers") == "active"):
        raise invalid("Your destination account needs to have at least one of the following "
                      "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                      "insufficient_capabilities_for_transfer", "destination")
    src = p_str(p, "source_transaction")
    if src:
        ch = st.get(src, "charge", "source_transaction", False)
        if ch["status"] != "succeeded":
            raise invalid("The source_transaction charge has not succeeded.", None,
                          "source_transaction")
    tr = base("tr", "transfer", p_metadata(p))
    tr.update({
        "amount": amount, "amount_reversed": 0, "balance_transaction": new_id("txn"),
        "currency": currency, "description": p_str(p, "description"), "destination": dest,
        "destination_payment": new_id("py"), "reversed": False, "source_transaction": src,
        "source_type": p_str(p, "source_type") or "card",
        "transfer_group": p_str(p, "transfer_group"),
    })
    tr["reversals"] = {"object": "list", "data": [], "has_more": False, "total_count": 0,
                       "url": "/v1/transfers/%s/reversals" % tr["id"]}
    return 200, st.put(tr)


def create_reversal(st, p, tid):
    check_params(p, "reversal")
    tr = st.get(tid, "transfer")
    remaining = tr["amount"] - tr["amount_reversed"]
    if remaining <= 0:
        raise invalid("Transfer %s has already been fully reversed." % tid, None, "amount")
    amount = p_int(p, "amount", minimum=1)
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise invalid("Amount (%d) is greater than the amount remaining on the transfer (%d)."
                      % (amount, remaining), "amount_too_large", "amount")
    trr = base("trr", "transfer_reversal", p_metadata(p))
    trr.update({"amount": amount, "balance_transaction": new_id("txn"), "currency": tr["currency"],
                "destination_payment_refund": new_id("pyr"), "source_refund": None,
                "transfer": tid})
    st.put(trr)
    tr["amount_reversed"] += amount
    tr["reversed"] = tr["amount_reversed"] == tr["amount"]
    tr["reversals"]["data"].insert(0, copy.deepcopy(trr))
    tr["reversals"]["total_count"] += 1
    return 200, trr


def create_refund(st, p):
    check_params(p, "refund")
    pid, cid = p_str(p, "payment_intent"), p_str(p, "charge")
    if not pid and not cid:
        raise invalid("One of the following params should be provided for this request: "
                      "payment_intent or charge.", "parameter_missing", "payment_intent", False)
    if pid:
        pi = st.get(pid, "payment_intent", "payment_intent", False)
        ch = st.objects.get(pi["latest_charge"] or "")
        if pi["status"] != "succeeded" or not ch:
            raise invalid("This PaymentIntent (%s) does not have a successful charge to refund."
                          % pid, None, "payment_intent")
        if cid and cid != ch["id"]:
            raise invalid("The charge %s does not belong to payment intent %s." % (cid, pid),
                          None, "charge")
    else:
        ch = st.get(cid, "charge", "charge", False)
    remaining = ch["amount"] - ch["amount_refunded"]
    if remaining <= 0:
        raise invalid("Charge %s has already been refunded." % ch["id"], "charge_already_refunded")
    amount = p_int(p, "amount", minimum=1)
    amount = remaining if amount is None else amount
    if amount > remaining:
        raise invalid("Refund amount ($%.2f) is greater than unrefunded amount on charge ($%.2f)"
                      % (amount / 100, remaining / 100), "amount_too_large", "amount")
    re_ = base("re", "refund", p_metadata(p))
    re_.update({"amount": amount, "balance_transaction": new_id("txn"), "charge": ch["id"],
                "currency": ch["currency"], "payment_intent": ch["payment_intent"],
                "reason": p_str(p, "reason"), "receipt_number": None,
                "source_transfer_reversal": None, "status": "succeeded",
                "transfer_reversal": None})
    ch["amount_refunded"] += amount
    ch["refunded"] = ch["amount_refunded"] == ch["amount"]
    return 200, st.put(re_)


def create_account(st, p):
    check_params(p, "account")
    atype = p_str(p, "type")
    if atype is None and not p.get("controller"):
        raise missing("type")
    if atype not in (None, "express", "standard", "custom"):
        raise invalid("Invalid type: must be one of custom, express, or standard", None, "type",
                      False)
    acct = base("acct", "account", p_metadata(p))
    caps = p.get("capabilities") if isinstance(p.get("capabilities"), dict) else {}
    acct.update({
        "type": atype or "express", "business_type": p_str(p, "business_type"),
        "capabilities": {k: "inactive" for k in caps}, "charges_enabled": False,
        "country": p_str(p, "country") or "US", "default_currency": "usd",
        "details_submitted": False, "email": p_str(p, "email"), "payouts_enabled": False,
        "requirements": {"currently_due": ["business_type", "external_account",
                                           "tos_acceptance.date", "tos_acceptance.ip"],
                         "disabled_reason": "requirements.past_due", "past_due": [],
                         "eventually_due": [], "pending_verification": []},
    })
    return 200, st.put(acct)


def create_account_link(st, p):
    check_params(p, "account_link")
    acct = st.get(p_str(p, "account", required=True), "account", "account", False)
    ltype = p_str(p, "type", required=True)
    if ltype not in ("account_onboarding", "account_update"):
        raise invalid("Invalid type: must be one of account_onboarding or account_update",
                      None, "type", False)
    now = int(time.time())
    return 200, {"object": "account_link", "created": now, "expires_at": now + 300,
                 "url": "https://connect.stripe.test/setup/e/%s/%s"
                        % (acct["id"], secrets.token_urlsafe(12))}


def create_customer(st, p):
    check_params(p, "customer")
    cus = base("cus", "customer", p_metadata(p))
    cus.update({"address": None, "balance": 0, "currency": None, "default_source": None,
                "delinquent": False, "description": p_str(p, "description"),
                "email": p_str(p, "email"), "invoice_prefix": secrets.token_hex(4).upper(),
                "invoice_settings": {"default_payment_method": None}, "name": p_str(p, "name"),
                "phone": p_str(p, "phone"), "preferred_locales": [], "shipping": None,
                "tax_exempt": "none"})
    return 200, st.put(cus)


def create_subscription(st, p):
    check_params(p, "sub_create")
    cus = st.get(p_str(p, "customer", required=True), "customer", "customer", False)
    items = p.get("items")
    if not items:
        raise missing("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid("Invalid array", None, "items", False)
    behavior = p_str(p, "payment_behavior") or "allow_incomplete"
    if behavior not in ("allow_incomplete", "default_incomplete", "error_if_incomplete",
                        "pending_if_incomplete"):
        raise invalid("Invalid payment_behavior", None, "payment_behavior", False)
    if behavior != "default_incomplete" and not cus["invoice_settings"]["default_payment_method"]:
        # What Stripe says when it would have to charge a customer with no card.
        raise invalid("This customer has no attached payment source or default payment method. "
                      "Please consider adding a default payment method.", None, None)
    now = int(time.time())
    sub = base("sub", "subscription", p_metadata(p))
    sitems, total, currency, period = [], 0, None, 30 * 86400
    for n, it in enumerate(items):
        price = price_for(st, it.get("price"), "items[%d][price]" % n)
        qty = p_int(it, "quantity", minimum=1) or 1
        total += price["unit_amount"] * qty
        currency = currency or price["currency"]
        if price.get("recurring", {}).get("interval") == "year":
            period = 365 * 86400
        sitems.append({"id": new_id("si", 14), "object": "subscription_item", "created": now,
                       "metadata": {}, "price": copy.deepcopy(price), "quantity": qty,
                       "subscription": sub["id"]})
    inv = base("in", "invoice")
    pi = new_payment_intent(st, total, currency, invoice=inv["id"], customer=cus["id"],
                            description="Subscription creation")
    inv.update({"amount_due": total, "amount_paid": 0, "amount_remaining": total,
                "billing_reason": "subscription_create", "collection_method": "charge_automatically",
                "currency": currency, "customer": cus["id"], "hosted_invoice_url": None,
                "paid": False, "payment_intent": pi["id"], "period_start": now, "period_end": now,
                "status": "open", "subscription": sub["id"], "subtotal": total, "total": total})
    st.put(inv)
    sub.update({
        "billing_cycle_anchor": now, "cancel_at": None, "cancel_at_period_end": False,
        "canceled_at": None, "collection_method": "charge_automatically", "currency": currency,
        "current_period_start": now, "current_period_end": now + period, "customer": cus["id"],
        "days_until_due": None, "default_payment_method": None, "description": None,
        "ended_at": None, "latest_invoice": inv["id"], "start_date": now,
        "status": "incomplete", "trial_end": None, "trial_start": None,
        "items": {"object": "list", "data": sitems, "has_more": False,
                  "total_count": len(sitems), "url": "/v1/subscription_items?subscription=%s"
                                                     % sub["id"]},
        "payment_settings": {"save_default_payment_method": "off"},
        "pending_setup_intent": None,
    })
    return 200, st.put(sub)


def update_subscription(st, p, sid):
    check_params(p, "sub_update")
    sub = st.get(sid, "subscription")
    if sub["status"] in ("canceled", "incomplete_expired") and set(p) - {"metadata", "expand",
                                                                      "cancellation_details"}:
        raise invalid("A canceled subscription can only update its cancellation_details and "
                      "metadata.")
    if "cancel_at_period_end" in p:
        flag = p_bool(p, "cancel_at_period_end")
        sub.update({"cancel_at_period_end": flag,
                    "cancel_at": sub["current_period_end"] if flag else None,
                    "canceled_at": int(time.time()) if flag else None})
    sub["metadata"] = p_metadata(p, sub["metadata"])
    return 200, sub


def cancel_subscription(st, p, sid):
    check_params(p, "sub_cancel")
    sub = st.get(sid, "subscription")
    if sub["status"] != "canceled":
        now = int(time.time())
        sub.update({"status": "canceled", "canceled_at": now, "ended_at": now})
    return 200, sub


def getter(kind):
    def get(st, p, oid):
        check_params(p, "get")
        return 200, st.get(oid, kind)
    return get


def lister(kind, url, allowed, filters=(), parent=None):
    def lst(st, p, *ids):
        check_params(p, allowed)
        limit = p_int(p, "limit", minimum=1) or 10
        if limit > 100:
            raise invalid("This value must be less than or equal to 100.", None, "limit", False)
        items = st.of_type(kind)
        for f in filters:
            if p.get(f) is not None:
                items = [o for o in items if o.get(f) == p[f]]
        if parent:
            st.get(ids[0], "transfer")
            items = [o for o in items if o.get(parent) == ids[0]]
        after = p_str(p, "starting_after")
        if after:
            ids_ = [o["id"] for o in items]
            items = items[ids_.index(after) + 1:] if after in ids_ else []
        return 200, {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
                     "url": url % ids if ids else url}
    return lst


ROUTES = [
    ("POST", r"/v1/payment_intents", create_pi),
    ("GET", r"/v1/payment_intents/([^/]+)", getter("payment_intent")),
    ("POST", r"/v1/payment_intents/([^/]+)/confirm", confirm_pi),
    ("POST", r"/v1/payment_intents/([^/]+)/cancel", cancel_pi),
    ("GET", r"/v1/charges/([^/]+)", getter("charge")),
    ("POST", r"/v1/transfers", create_transfer),
    ("GET", r"/v1/transfers", lister("transfer", "/v1/transfers", "list_transfers",
                                     ("transfer_group", "destination"))),
    ("GET", r"/v1/transfers/([^/]+)", getter("transfer")),
    ("POST", r"/v1/transfers/([^/]+)/reversals", create_reversal),
    ("GET", r"/v1/transfers/([^/]+)/reversals", lister("transfer_reversal",
                                                       "/v1/transfers/%s/reversals",
                                                       "list_plain", parent="transfer")),
    ("POST", r"/v1/refunds", create_refund),
    ("GET", r"/v1/refunds", lister("refund", "/v1/refunds", "list_refunds",
                                   ("charge", "payment_intent"))),
    ("GET", r"/v1/refunds/([^/]+)", getter("refund")),
    ("POST", r"/v1/accounts", create_account),
    ("GET", r"/v1/accounts/([^/]+)", getter("account")),
    ("POST", r"/v1/account_links", create_account_link),
    ("POST", r"/v1/customers", create_customer),
    ("GET", r"/v1/customers/([^/]+)", getter("customer")),
    ("POST", r"/v1/subscriptions", create_subscription),
    ("GET", r"/v1/subscriptions/([^/]+)", getter("subscription")),
    ("POST", r"/v1/subscriptions/([^/]+)", update_subscription),
    ("DELETE", r"/v1/subscriptions/([^/]+)", cancel_subscription),
    ("GET", r"/v1/invoices/([^/]+)", getter("invoice")),
]
ROUTES = [(m, re.compile(r + r"/?$"), h) for m, r, h in ROUTES]


# ------------------------------------------------------------------ webhooks

def sign(payload, secrets_, timestamp):
    """Stripe-Signature header: t=<unix>,v1=<hex HMAC-SHA256("<t>.<payload>")>,
    one v1 per secret (Stripe signs with both while a secret is being rolled)."""
    if isinstance(secrets_, str):
        secrets_ = [secrets_]
    parts = ["t=%d" % timestamp]
    for s in secrets_:
        mac = hmac.new(s.encode(), ("%d." % timestamp).encode() + payload.encode(), hashlib.sha256)
        parts.append("v1=" + mac.hexdigest())
    return ",".join(parts)


def is_loopback_host(host):
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------- server

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as libcurl expects

    def version_string(self):              # what api.stripe.com says
        return "nginx"

    def log_message(self, fmt, *args):     # quiet: the request log is at /_fake/requests
        pass

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = lambda self: self._handle()

    # -- plumbing

    def _send(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache, no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self):
        """Close the connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _reset(self):
        """Abort the connection with a TCP RST (SO_LINGER 0), as a middlebox
        or a crashed peer does: the client reads ECONNRESET, not an EOF."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # The descriptor closes once the handler's rfile and wfile let go of
        # it, without the FIN a shutdown() would send first.
        self.connection.close()

    def _handle(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, b'{"error": {"type": "invalid_request_error", '
                            b'"message": "Request body too large."}}\n')
            self.close_connection = True
            return
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        if url.path.startswith("/_fake/"):
            return self._control(st, url, raw)
        req_id = new_id("req", 14)
        rec = {"method": self.command, "path": url.path, "query": url.query, "body": raw[:65536],
               "headers": {h: self.headers[h] for h in ("Authorization", "Idempotency-Key",
                                                        "Stripe-Version", "Content-Type",
                                                        "Stripe-Account") if h in self.headers},
               "params": None, "status": None, "replayed": False, "fault": None,
               "request_id": req_id, "time": time.time()}
        with st.lock:
            st.seq += 1
            rec["seq"] = st.seq
            st.requests.append(rec)
        hdrs = [("Request-Id", req_id),
                ("Stripe-Version", self.headers.get("Stripe-Version") or API_VERSION)]
        try:
            self._api(st, url, raw, rec, hdrs)
        except StripeError as e:
            self._reply(rec, *self._error(e, req_id), hdrs)

    def _error(self, e, req_id):
        err = dict(e.error, request_log_url="https://dashboard.stripe.com/test/logs/" + req_id)
        return e.status, (json.dumps({"error": err}, indent=2) + "\n").encode()

    def _reply(self, rec, status, body, hdrs, replayed=None):
        with self.server.state.lock:
            rec["status"] = status
            if replayed is not None:
                rec["replayed"] = replayed
        self._send(status, body, hdrs)

    def _authorized(self):
        auth = self.headers.get("Authorization", "")
        key = None
        if auth.startswith("Bearer "):
            key = auth[7:].strip()
        elif auth.startswith("Basic "):       # curl -u sk_test_...: works against Stripe too
            try:
                key = base64.b64decode(auth[6:]).decode().split(":")[0]
            except ValueError:
                key = ""
        if not key:
            raise StripeError(401, "invalid_request_error",
                              "You did not provide an API key. You need to provide your API key "
                              "in the Authorization header, using Bearer auth (e.g. "
                              "'Authorization: Bearer YOUR_SECRET_KEY'). See "
                              "https://stripe.com/docs/api#authentication for details, or we "
                              "can help at https://support.stripe.com/.", store=False)
        if not hmac.compare_digest(key, self.server.state.api_key):
            shown = key if len(key) <= 12 else key[:8] + "*" * (len(key) - 12) + key[-4:]
            raise StripeError(401, "invalid_request_error", "Invalid API Key provided: " + shown,
                              store=False)
        return key

    # -- the Stripe API

    def _api(self, st, url, raw, rec, hdrs):
        api_key = self._authorized()
        if self.command == "POST" and raw:
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                raise invalid("Invalid request: the POST body must be "
                              "application/x-www-form-urlencoded (got %s)." % (ctype or "none"),
                              store=False)
        try:
            params = parse_form(raw if self.command == "POST" else url.query)
        except ValueError as e:
            raise invalid(str(e), store=False)
        with st.lock:
            rec["params"] = params
        for method, rx, handler in ROUTES:
            m = rx.match(url.path)
            if m and method == self.command:
                break
        else:
            raise invalid("Unrecognized request URL (%s: %s). Please see https://stripe.com/docs "
                          "or we can help at https://support.stripe.com/."
                          % (self.command, url.path), store=False, status=404)

        rule = self._take_rule(st, url.path)
        if rule:
            with st.lock:
                rec["fault"] = rule["mode"]
        # Faults that happen "before Stripe ran anything" never touch idempotency.
        if rule and not rule["after_effect"] and not rule["store"] and rule["mode"] != "slow":
            return self._fault(st, rule, rec, hdrs, None)

        key = self.headers.get("Idempotency-Key") if self.command == "POST" else None
        fingerprint = json.dumps([self.command, url.path, params], sort_keys=True)
        ikey = (api_key, key)
        if key and len(key) > 255:
            raise invalid("Invalid Idempotency-Key: it must be at most 255 characters long.",
                          store=False)
        mine = None
        if key:
            hdrs.append(("Idempotency-Key", key))
            with st.lock:
                entry = st.idem.get(ikey)
                if entry is None:
                    mine = st.idem[ikey] = {"state": "in_flight", "fingerprint": fingerprint,
                                            "endpoint": "%s %s" % (self.command, url.path)}
            if entry is not None:
                return self._idem_existing(st, entry, key, fingerprint, url, rec, hdrs, rule)

        if rule and rule["mode"] == "slow":
            st.wake.wait(rule["delay_ms"] / 1000.0)
        stored = True
        with st.lock:
            if rule and rule["mode"] in ("error", "5xx") and not rule["after_effect"]:
                # an injected error that Stripe keeps under the key
                status, body = self._injected(rule, rec["request_id"])
            else:
                try:
                    status, obj = handler(st, params, *m.groups())
                    obj = expand(st, obj, params.get("expand") if isinstance(
                        params.get("expand"), list) else None)
                    body = (json.dumps(obj, indent=2) + "\n").encode()
                except StripeError as e:
                    status, body = self._error(e, rec["request_id"])
                    stored = e.store
                except Exception as e:      # a bug here must not leave a key locked
                    status, body = self._error(StripeError(500, "api_error", "fake bug: %r" % e),
                                               rec["request_id"])
                    stored = False
            if mine is not None and st.idem.get(ikey) is mine:   # not reset meanwhile
                if stored:
                    mine.update(state="done", status=status, body=body.decode(),
                                request_id=rec["request_id"])
                    st.idem.move_to_end(ikey)
                    while len(st.idem) > MAX_IDEMPOTENCY:
                        st.idem.popitem(last=False)
                else:
                    st.idem.pop(ikey, None)
        if self.command != "GET":
            st.save()
        if rule and rule["mode"] != "slow":
            return self._fault(st, rule, rec, hdrs, (status, body) if rule["after_effect"] else None)
        self._reply(rec, status, body, hdrs)

    def _idem_existing(self, st, entry, key, fingerprint, url, rec, hdrs, rule):
        endpoint = "%s %s" % (self.command, url.path)
        if entry["state"] == "in_flight":
            raise StripeError(409, "idempotency_error",
                              "There is currently another in-progress request using this "
                              "Idempotent Key (that probably means you submitted twice, and the "
                              "other request is still going through): %s. Please try again later."
                              % key, "idempotency_key_in_use", store=False)
        if entry["endpoint"] != endpoint:
            raise StripeError(400, "idempotency_error",
                              "Keys for idempotent requests can only be used for the same "
                              "endpoint they were first used for ('%s' vs '%s'). Try using a key "
                              "other than '%s' if you meant to execute a different request."
                              % (entry["endpoint"], endpoint, key), store=False)
        if entry["fingerprint"] != fingerprint:
            raise StripeError(400, "idempotency_error",
                              "Keys for idempotent requests can only be used with the same "
                              "parameters they were first used with. Try using a key other than "
                              "'%s' if you meant to execute a different request." % key,
                              store=False)
        hdrs += [("Idempotent-Replayed", "true"), ("Original-Request", entry["request_id"])]
        with st.lock:
            rec["replayed"] = True
        if rule and rule["mode"] != "slow":      # a matched rule still shows its fault
            return self._fault(st, rule, rec, hdrs, (entry["status"], entry["body"].encode()))
        self._reply(rec, entry["status"], entry["body"].encode(), hdrs, replayed=True)

    # -- failure injection

    def _take_rule(self, st, path):
        with st.lock:
            for rule in st.rules:
                if rule["method"] in ("*", self.command) and fnmatch.fnmatchcase(path, rule["path"]):
                    rule["times"] -= 1
                    if rule["times"] <= 0:
                        st.rules.remove(rule)
                    return dict(rule)
        return None

    def _injected(self, rule, req_id):
        if rule["mode"] == "5xx":
            err = rule["error"] or {"type": "api_error",
                                    "message": "An unknown error occurred"}
        else:
            err = rule["error"] or default_error(rule["status"])
        err = dict(err, request_log_url="https://dashboard.stripe.com/test/logs/" + req_id)
        return rule["status"], (json.dumps({"error": err}, indent=2) + "\n").encode()

    def _fault(self, st, rule, rec, hdrs, real):
        """Show the client the failure.  `real` is the (status, body) the
        operation produced when it took effect (after_effect), else None."""
        mode = rule["mode"]
        if mode in ("error", "5xx"):
            if rule.get("should_retry") is not None:
                hdrs.append(("Stripe-Should-Retry", "true" if rule["should_retry"] else "false"))
            hdrs = [h for h in hdrs if h[0] not in ("Idempotent-Replayed", "Original-Request")]
            return self._reply(rec, *self._injected(rule, rec["request_id"]), hdrs)
        if mode == "hang":
            st.wake.wait(rule["delay_ms"] / 1000.0)
            if real:       # it happened; answer late (the client has likely given up)
                return self._reply(rec, real[0], real[1], hdrs)
        if mode == "reset":
            return self._reset()
        # drop, or a hang of a request that never took effect: no answer at all
        self._drop()

    # -- control API

    def _control(self, st, url, raw):
        try:
            body = json.loads(raw) if raw.strip() else {}
            status, out = control(self.server, self.command, url, body)
        except (ValueError, KeyError, TypeError) as e:
            status, out = 400, {"error": "%s: %s" % (type(e).__name__, e)}
        self._send(status, (json.dumps(out, indent=2) + "\n").encode())


def default_error(status):
    return {
        400: {"type": "invalid_request_error", "message": "Invalid request."},
        402: {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
              "message": "Your card was declined."},
        404: {"type": "invalid_request_error", "code": "resource_missing",
              "message": "No such object.", "param": "id"},
        409: {"type": "idempotency_error", "code": "idempotency_key_in_use",
              "message": "There is currently another in-progress request using this key."},
        429: {"type": "rate_limit_error", "code": "rate_limit",
              "message": "Too many requests hit the API too quickly. We recommend an "
                         "exponential backoff of your requests."},
    }.get(status, {"type": "invalid_request_error", "message": "Request failed."})


def merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            merge(dst[k], v)
        else:
            dst[k] = v


def control(server, method, url, body):
    """The /_fake/ API.  Returns (status, JSON-able object)."""
    st = server.state
    q = dict(urllib.parse.parse_qsl(url.query))
    parts = url.path.strip("/").split("/")[1:]          # drop "_fake"
    route = (method, parts[0] if parts else "")
    with st.lock:
        if route == ("GET", "health"):
            return 200, {"ok": True}
        if route == ("POST", "reset"):
            st.reset()
            st.save()
            return 200, {"ok": True}
        if route == ("GET", "requests"):
            out = [r for r in st.requests
                   if r["path"].startswith(q.get("path_prefix", ""))
                   and q.get("method", r["method"]) == r["method"]
                   and q.get("idempotency_key", r["headers"].get("Idempotency-Key"))
                   == r["headers"].get("Idempotency-Key")]
            return 200, {"requests": copy.deepcopy(out), "count": len(out)}
        if route == ("DELETE", "requests"):
            st.requests.clear()
            return 200, {"ok": True}
        if route == ("POST", "fail"):
            return 200, {"rule": add_rule(st, body)}
        if route == ("GET", "fail"):
            return 200, {"rules": copy.deepcopy(st.rules)}
        if route == ("DELETE", "fail"):
            st.rules.clear()
            return 200, {"ok": True}
        if route == ("GET", "objects") and len(parts) == 1:
            objs = [o for o in st.objects.values() if q.get("type", o["object"]) == o["object"]]
            return 200, {"data": copy.deepcopy(objs), "count": len(objs)}
        if route[1] == "objects" and len(parts) == 2:
            oid = parts[1]
            obj = st.objects.get(oid)
            if method == "POST":
                if obj is None:          # lets a test seed prices, accounts, ...
                    kind = OBJECT_PREFIXES.get(oid.split("_")[0], "unknown")
                    obj = st.put({"id": oid, "object": kind, "created": int(time.time()),
                                  "livemode": False, "metadata": {}})
                merge(obj, body)
                st.save()
            if obj is None:
                return 404, {"error": "no such object: " + oid}
            return 200, copy.deepcopy(obj)
        if route == ("POST", "payment_intents") and len(parts) == 3:
            pi = st.objects.get(parts[1])
            if not pi or pi["object"] != "payment_intent":
                return 404, {"error": "no such payment_intent: " + parts[1]}
            if parts[2] == "succeed":
                pi_succeed(st, pi)
            elif parts[2] == "fail":
                pi_decline(st, pi)
            else:
                return 404, {"error": "unknown action " + parts[2]}
            st.save()
            return 200, copy.deepcopy(pi)
        if route == ("POST", "accounts") and len(parts) == 3 and parts[2] == "complete":
            acct = st.objects.get(parts[1])
            if not acct or acct["object"] != "account":
                return 404, {"error": "no such account: " + parts[1]}
            acct.update({"charges_enabled": True, "payouts_enabled": True,
                         "details_submitted": True,
                         "capabilities": {"card_payments": "active", "transfers": "active"}})
            acct["requirements"].update(currently_due=[], disabled_reason=None)
            st.save()
            return 200, copy.deepcopy(acct)
        if route == ("POST", "webhooks") and parts[1:] == ["sign"]:
            secret = body["secret"]
            ts = int(body.get("timestamp") or time.time())
            return 200, {"header": sign(body["payload"], secret, ts), "timestamp": ts}
    # Delivery happens outside the lock: the app may call back into the fake.
    if route == ("POST", "webhooks") and parts[1:] == ["send"]:
        return 200, send_webhook(server, body)
    return 404, {"error": "unknown control route %s %s" % (method, url.path)}


def add_rule(st, body):
    mode = body.get("mode", "error")
    if mode not in ("error", "5xx", "hang", "slow", "drop", "reset"):
        raise ValueError("mode must be error, 5xx, hang, slow, drop or reset")
    status = int(body.get("status") or (500 if mode == "5xx" else 402))
    rule = {
        "id": st.next_rule_id(), "method": body.get("method", "*").upper(),
        "path": body.get("path", "*"), "mode": mode, "status": status,
        "error": body.get("error"), "times": int(body.get("times", 1)),
        "delay_ms": int(body.get("delay_ms", DEFAULT_HANG_MS if mode == "hang" else 1000)),
        "after_effect": bool(body.get("after_effect", False)),
        "should_retry": body.get("should_retry"),
        # Stripe keeps the result of an executed request under its key (a 4xx
        # card error replays), but not 429s (rate limiting runs first) and, by
        # this fake's default, not 5xx, so a retry after a 500 runs for real.
        "store": bool(body.get("store", mode == "error" and status != 429)),
    }
    if mode in ("hang", "drop", "reset", "slow"):
        rule["store"] = False           # nothing to store: no answer, or the real one
    if isinstance(rule["error"], dict) and "error" in rule["error"]:
        rule["error"] = rule["error"]["error"]      # accept a whole {"error": {...}} too
    st.rules.append(rule)
    return copy.deepcopy(rule)


def send_webhook(server, body):
    """Build a Stripe Event, sign it and POST it to the app; return what the
    app answered.  "payload" sends a raw string instead of an event (to test
    malformed JSON); "signature_header" replaces the computed header."""
    st, args = server.state, server.args
    now = int(time.time())
    ts = int(body.get("timestamp") or now)
    if "payload" in body:
        payload, event = body["payload"], None
    else:
        obj = body.get("object") or {}
        if isinstance(obj, str):                    # an id: send the stored object
            with st.lock:
                obj = copy.deepcopy(st.objects[obj])
        data = {"object": obj}
        if "previous_attributes" in body:
            data["previous_attributes"] = body["previous_attributes"]
        event = {"id": body.get("id") or new_id("evt"), "object": "event",
                 "api_version": body.get("api_version", API_VERSION),
                 "created": int(body.get("created") or ts), "data": data, "livemode": False,
                 "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
                 "type": body["type"]}
        payload = json.dumps(event, indent=2)       # Stripe sends pretty-printed JSON
    secret = body.get("secret", args.webhook_secret)
    header = body.get("signature_header")
    if header is None and secret:
        header = sign(payload, secret, ts)
        if body.get("include_v0"):                  # test-mode events carry a v0 entry too
            header += ",v0=" + hashlib.sha256(payload.encode()).hexdigest()
    target = body.get("url") or args.webhook_url
    if not target:
        raise ValueError("no webhook url: pass --webhook-url or \"url\"")
    parsed = urllib.parse.urlsplit(target)
    if not is_loopback_host(parsed.hostname or ""):
        raise ValueError("webhook url must be on loopback: " + target)
    req = urllib.request.Request(target, data=payload.encode(), method="POST")
    req.add_header("Content-Type", "application/json; charset=utf-8")
    req.add_header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
    if header:
        req.add_header("Stripe-Signature", header)
    ctx = None
    if parsed.scheme == "https":
        if args.ca_file:
            ctx = ssl.create_default_context(cafile=args.ca_file)
        else:                                       # loopback test URL, self-signed cert
            ctx = ssl._create_unverified_context()
    out = {"event": event, "event_id": event and event["id"], "payload": payload,
           "signature_header": header, "status": None, "body": None}
    try:
        with urllib.request.urlopen(req, timeout=float(body.get("timeout", 10)),
                                    context=ctx) as resp:
            out.update(status=resp.status, body=resp.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        out.update(status=e.code, body=e.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError) as e:
        out["error"] = str(getattr(e, "reason", e))
    return out


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128          # fifty concurrent releases must not be refused


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--state-dir")
    ap.add_argument("--api-key", default="sk_test_fake")
    ap.add_argument("--webhook-url")
    ap.add_argument("--webhook-secret")
    ap.add_argument("--ca-file", help="CA bundle trusted when delivering to https webhook URLs")
    args = ap.parse_args(argv)
    if not is_loopback_host(args.host):
        ap.error("--host must be a loopback address")
    if args.webhook_url and not is_loopback_host(urllib.parse.urlsplit(args.webhook_url).hostname
                                                 or ""):
        ap.error("--webhook-url must point at a loopback address")
    if args.state_dir:
        os.makedirs(args.state_dir, exist_ok=True)
    if ":" in args.host:
        Server.address_family = socket.AF_INET6
    server = Server((args.host, args.port), Handler)
    server.state = State(args.api_key, args.state_dir)
    server.args = args
    print("ready %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.state.wake.set()
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
