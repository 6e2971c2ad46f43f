"""Authentication for schemathesis runs against `synth serve` (see scripts/test).

Each run signs in as one ordinary user (registered here) and, for `/admin/*` and the
administrators' statistics, as the administrator the test script created. A request
answered 401 because the run itself ended the session (logout, account erasure, an admin
deactivating the user) signs in again, as a fresh user where the old one is gone, and is
retried.
"""

import json
import os
import urllib.error
import urllib.request
import uuid

import schemathesis

BASE = os.environ["SYNTH_URL"]
PASSWORD = "schemathesis passphrase 42"
ADMIN_STATS = {"/stats/system", "/stats/performance"}


def _post(path, body):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def _login(email, password):
    status, body = _post("/auth/login", {"email": email, "password": password})
    if status != 200:
        raise RuntimeError(f"login of {email} failed: {status} {body}")
    return body["data"]["access_token"]


def _fresh_user():
    email = f"st-{uuid.uuid4().hex[:16]}@example.com"
    status, body = _post("/auth/register", {"email": email, "password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"registration failed: {status} {body}")
    return _login(email, PASSWORD)


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class SynthAuth:
    def get(self, case, ctx):
        admin = _login(os.environ["SYNTH_ADMIN_EMAIL"], os.environ["SYNTH_ADMIN_PASSWORD"])
        return {"user": _fresh_user(), "admin": admin}

    def set(self, case, data, ctx):
        admin_only = case.path.startswith("/admin") or case.path in ADMIN_STATS
        token = data["admin"] if admin_only else data["user"]
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"
