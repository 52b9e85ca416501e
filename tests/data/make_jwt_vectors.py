#!/usr/bin/python3
"""Makes tests/data/jwt_vectors.json with PyJWT (Debian's python3-jwt), an
implementation independent of Gala's, so the unit tests check Gala's HS256
verifier against tokens it did not make. Regenerate: python3 make_jwt_vectors.py"""
import base64
import hashlib
import hmac
import json

import jwt

KEY = "unit-test-secret-key-0123456789abcdef"
NOW = 1800000000
CLAIMS = {
    "sub": "3bdfb64a-e138-4ad6-b618-625a589582e3",
    "role": "customer",
    "iat": NOW - 10,
    "exp": NOW + 3600,
    "jti": "b67bc326-0ce0-4186-982d-16fb2c6be452",
    "csrf": "e77ea9f056e40956b379314a244372b0",
    "tv": 0,
    "amr": ["pwd"],
}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header, payload, key=KEY):
    h = b64(json.dumps(header, separators=(",", ":")).encode())
    p = b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(key.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


vectors = [
    {"name": "valid", "token": jwt.encode(CLAIMS, KEY, algorithm="HS256"), "result": "ok"},
    {"name": "expired", "token": jwt.encode(dict(CLAIMS, exp=NOW - 1), KEY, algorithm="HS256"),
     "result": "expired"},
    {"name": "wrong key", "token": jwt.encode(CLAIMS, KEY + "x", algorithm="HS256"),
     "result": "bad_signature"},
    {"name": "alg none", "token": jwt.encode(CLAIMS, None, algorithm="none"),
     "result": "bad_algorithm"},
    {"name": "HS512", "token": jwt.encode(CLAIMS, KEY, algorithm="HS512"),
     "result": "bad_algorithm"},
    {"name": "alg none with HS256 signature", "token": forge({"alg": "none", "typ": "JWT"}, CLAIMS),
     "result": "bad_algorithm"},
    {"name": "missing claim", "token": jwt.encode({k: v for k, v in CLAIMS.items() if k != "jti"},
                                                  KEY, algorithm="HS256"),
     "result": "malformed"},
]
tampered = vectors[0]["token"].split(".")
payload = json.loads(base64.urlsafe_b64decode(tampered[1] + "=="))
payload["role"] = "admin"
tampered[1] = b64(json.dumps(payload, separators=(",", ":")).encode())
vectors.append({"name": "tampered payload", "token": ".".join(tampered), "result": "bad_signature"})
for v in vectors:
    if v["result"] == "ok":
        assert jwt.decode(v["token"], KEY, algorithms=["HS256"],
                          options={"verify_exp": False, "verify_iat": False})["sub"] == CLAIMS["sub"]
with open("jwt_vectors.json", "w") as f:
    json.dump({"key": KEY, "now": NOW, "claims": CLAIMS, "vectors": vectors}, f, indent=1)
    f.write("\n")
