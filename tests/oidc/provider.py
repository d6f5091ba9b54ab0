#!/usr/bin/env python3
"""A small OpenID Connect provider for Steward's tests, on 127.0.0.1.

Built on PyPI's authlib (its OAuth 2.0 authorization server, the OpenID Connect code-flow
extension, PKCE and RP-Initiated Logout) and joserfc (keys and JWTs), served by the standard
library's http.server. crates/testpeers starts it (`OidcProvider`); a person can too:

    python tests/oidc/provider.py --port 9000 --users users.json \
        --client-id steward --client-secret s3cret

What it serves, at issuer http://127.0.0.1:PORT:
  GET  /.well-known/openid-configuration   discovery
  GET  /jwks                               the public signing keys (RS256 and ES256, each with a kid)
  GET  /authorize                          authorization code flow: PKCE S256, state and nonce
                                           required; the user is `login_hint`, else a plain HTML
                                           form with a username field posts back to /authorize
  POST /token                              client_secret_basic or client_secret_post; codes are
                                           single-use and live `code_ttl` seconds; PKCE verified
  GET  /userinfo                           the user's claims, for a Bearer access token
  GET  /logout                             RP-Initiated Logout (end_session_endpoint)

Users and their claims come from a JSON object keyed by login name, e.g.
    {"alice": {"sub": "u-alice", "email": "alice@example.test", "name": "Alice",
               "department": "Finance", "groups": ["g-fin"], "amr": ["pwd"],
               "acr": "urn:steward:test:pwd", "device_compliant": true, "userType": "Member"}}
`preferred_username` defaults to the login name and `sub` to a UUID derived from it; every
other claim is copied into the ID and access tokens and the userinfo answer.

Step-up: `acr_values` with a value containing "mfa" (`mfa`, `urn:…:mfa`) gives tokens
`amr: ["pwd", "mfa"]`, `acr` that value and a fresh `auth_time`; so do `prompt=login` and an
exceeded `max_age` (fresh `auth_time`). The provider remembers each user's last authentication
(no cookies), so a sign-in without those keeps the earlier `auth_time`.

Access tokens are JWTs: `aud` the API audience (--api-audience), `scp` the granted scopes,
`azp` the client, and the user's claims.

Test control (this peer only), POST with a JSON body:
  /_test/rotate-keys      add a new RS256 and ES256 signing key; the old ones stay published
  /_test/drop-old-keys    publish only the newest key of each algorithm
  /_test/config           {"alg": "RS256"|"ES256", "code_ttl": s, "access_token_lifetime": s,
                           "discovery_issuer": "...", "discovery_redirect": "..."}
  /_test/mint             an access token: {"user", "claims" (merged; null removes),
                           "lifetime", "not_before" (seconds from now), "issued_at" (seconds
                           from now), "audience", "issuer", "alg" (RS256, ES256, HS256, none),
                           "kid", "unpublished_key", "hmac_secret" ("pem", "der", "jwk_json",
                           "jwk_n": the published RSA key's bytes as the HS256 secret)}
  GET /_test/stats        how often discovery, JWKS and the token endpoint were asked
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import html
import ipaddress
import json
import os
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

# Plain HTTP is fine on loopback; authlib insists on HTTPS otherwise.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

from authlib.oauth2.rfc6749 import AuthorizationCodeGrant  # noqa: E402
from authlib.oauth2.rfc6749 import AuthorizationServer  # noqa: E402
from authlib.oauth2.rfc6749 import ClientMixin  # noqa: E402
from authlib.oauth2.rfc6749 import InvalidRequestError  # noqa: E402
from authlib.oauth2.rfc6749 import OAuth2Error  # noqa: E402
from authlib.oauth2.rfc6749 import OAuth2Payload  # noqa: E402
from authlib.oauth2.rfc6749 import OAuth2Request  # noqa: E402
from authlib.oauth2.rfc6749 import scope_to_list  # noqa: E402
from authlib.oauth2.rfc7636 import CodeChallenge  # noqa: E402
from authlib.oidc.core import AuthorizationCodeMixin  # noqa: E402
from authlib.oidc.core import OpenIDCode  # noqa: E402
from authlib.oidc.core import UserInfo  # noqa: E402
from authlib.oidc.rpinitiated import EndSessionEndpoint  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.errors import JoseError  # noqa: E402
from joserfc.jwk import ECKey  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402
from joserfc.jwk import RSAKey  # noqa: E402

ALGS = ("RS256", "ES256")
SCOPES = ("openid", "profile", "email", "offline_access")
# Claims the provider sets itself; a user file cannot override them.
RESERVED = {"iss", "aud", "exp", "iat", "nbf", "nonce", "auth_time", "at_hash", "c_hash", "azp", "jti", "password"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_loopback_http(uri: str) -> bool:
    """Redirect URIs this provider accepts: http(s) on a loopback host (any port or path)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


# --- state ---------------------------------------------------------------------------------


@dataclass
class Login:
    """One authentication of a user: who, when, how."""

    username: str
    claims: dict
    auth_time: int
    amr: list
    acr: str | None

    @property
    def sub(self) -> str:
        return self.claims["sub"]


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    login: Login
    created: float = field(default_factory=time.time)

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.login.auth_time

    def get_acr(self):
        return self.login.acr

    def get_amr(self):
        return self.login.amr


class Client(ClientMixin):
    def __init__(self, client_id: str, client_secret: str):
        self.client_id = client_id
        self.client_secret = client_secret
        self.client_metadata = {}

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return "openid"
        return " ".join(s for s in scope_to_list(scope) if s in SCOPES or s.startswith("api://"))

    def check_redirect_uri(self, redirect_uri):
        return is_loopback_http(redirect_uri)

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


class State:
    def __init__(self, issuer: str, api_audience: str, users: dict, client: Client):
        self.lock = threading.RLock()
        self.issuer = issuer
        self.api_audience = api_audience
        self.client = client
        self.users = users
        self.keys: dict[str, list] = {alg: [] for alg in ALGS}
        self.generation = 0
        self.alg = "RS256"
        self.code_ttl = 60
        self.access_token_lifetime = 3600
        self.discovery_issuer: str | None = None
        self.discovery_redirect: str | None = None
        self.codes: dict[str, Code] = {}
        self.used_nonces: set[str] = set()
        self.last_auth: dict[str, int] = {}
        self.stats = {"discovery": 0, "jwks": 0, "token": 0, "authorize": 0}
        self.rotate()

    def new_key(self, alg: str, published: bool = True):
        self.generation += 1
        kid = f"{'rsa' if alg == 'RS256' else 'ec'}-{self.generation}-{secrets.token_hex(4)}"
        if not published:
            kid = "unpublished-" + kid
        params = {"kid": kid, "use": "sig", "alg": alg}
        if alg == "RS256":
            return RSAKey.generate_key(2048, parameters=params)
        return ECKey.generate_key("P-256", parameters=params)

    def rotate(self):
        for alg in ALGS:
            self.keys[alg].append(self.new_key(alg))

    def drop_old(self):
        for alg in ALGS:
            self.keys[alg] = self.keys[alg][-1:]

    def current(self, alg: str):
        return self.keys[alg][-1]

    def public_jwks(self) -> dict:
        keys = []
        for alg in ALGS:
            for key in self.keys[alg]:
                d = key.as_dict(private=False)
                d.update({"kid": key.kid, "use": "sig", "alg": alg})
                keys.append(d)
        return {"keys": keys}

    def public_keyset(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks())

    def user_claims(self, username: str) -> dict:
        claims = {k: v for k, v in self.users[username].items() if k not in RESERVED}
        claims.setdefault("preferred_username", username)
        claims.setdefault("sub", str(uuid.uuid5(uuid.NAMESPACE_URL, f"steward-test-user:{username}")))
        return claims

    def login(self, username: str, params: dict, interactive: bool) -> Login:
        """An authentication of `username` for an authorization request with `params`."""
        now = int(time.time())
        claims = self.user_claims(username)
        prompts = params.get("prompt", "").split()
        step_up = next((v for v in params.get("acr_values", "").split() if "mfa" in v.lower()), None)
        max_age = params.get("max_age")
        last = self.last_auth.get(username)
        fresh = (
            interactive
            or last is None
            or "login" in prompts
            or step_up is not None
            or (max_age is not None and max_age.isdigit() and now - last >= int(max_age))
        )
        if fresh:
            self.last_auth[username] = now
        auth_time = self.last_auth[username]
        amr = ["pwd", "mfa"] if step_up else list(claims.pop("amr", ["pwd"]))
        claims.pop("amr", None)
        acr = step_up or claims.pop("acr", None)
        claims.pop("acr", None)
        return Login(username, claims, auth_time, amr, acr)

    def sign(self, claims: dict, alg: str, key=None, typ: str = "JWT") -> str:
        key = key or self.current(alg)
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key, algorithms=[alg])

    def access_token(self, login: Login, scope: str, client_id: str) -> tuple[str, int]:
        now = int(time.time())
        lifetime = self.access_token_lifetime
        claims = dict(login.claims)
        claims.update(
            {
                "iss": self.issuer,
                "aud": self.api_audience,
                "azp": client_id,
                "scp": scope,
                "iat": now,
                "nbf": now,
                "exp": now + lifetime,
                "jti": str(uuid.uuid4()),
                "auth_time": login.auth_time,
                "amr": login.amr,
            }
        )
        if login.acr:
            claims["acr"] = login.acr
        return self.sign(claims, self.alg, typ="at+jwt"), lifetime


STATE: State  # set in main()


# --- authlib integration over http.server ---------------------------------------------------


class Payload(OAuth2Payload):
    def __init__(self, pairs: list[tuple[str, str]]):
        self._data = {}
        self._datalist: dict[str, list] = {}
        for k, v in pairs:
            self._data.setdefault(k, v)
            self._datalist.setdefault(k, []).append(v)

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class Request(OAuth2Request):
    """An HTTP request as authlib sees it: query `args`, urlencoded `form`, both in `payload`."""

    def __init__(self, method: str, uri: str, headers, query: list, form: list):
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = dict(reversed(query))
        self._form = dict(reversed(form))
        self.payload = Payload(query + form)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class Server(AuthorizationServer):
    def query_client(self, client_id):
        return STATE.client if client_id == STATE.client.client_id else None

    def save_token(self, token, request):
        pass  # access tokens are self-contained JWTs

    def create_oauth2_request(self, request):
        return request

    def create_json_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        return status, body, headers

    def send_signal(self, name, *args, **kwargs):
        pass


class S256Required(CodeChallenge):
    """PKCE with S256 only, on every authorization request (not only public clients')."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: 'code_challenge' is missing", redirect_uri=redirect_uri)
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE must use code_challenge_method=S256", redirect_uri=redirect_uri)
        return super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_authorization_code(self, code, request):
        data = request.payload.data
        STATE.codes[code] = Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=data.get("redirect_uri"),
            scope=request.scope,
            nonce=data.get("nonce"),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            login=request.user,
        )
        if data.get("nonce"):
            STATE.used_nonces.add(data["nonce"])

    def query_authorization_code(self, code, client):
        item = STATE.codes.get(code)
        if item is None or item.client_id != client.get_client_id():
            return None
        if time.time() - item.created > STATE.code_ttl:
            del STATE.codes[code]
            return None
        return item

    def delete_authorization_code(self, authorization_code):
        STATE.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code):
        return authorization_code.login


class OpenIDCodeFlow(OpenIDCode):
    def exists_nonce(self, nonce, request):
        return nonce in STATE.used_nonces

    def resolve_client_private_key(self, client):
        return STATE.current(STATE.alg)

    def get_client_algorithm(self, client):
        return STATE.alg

    def get_encode_header(self, client):
        return {"alg": STATE.alg, "kid": STATE.current(STATE.alg).kid, "typ": "JWT"}

    def get_client_claims(self, client):
        return {"iss": STATE.issuer, "aud": [client.get_client_id()]}

    def generate_user_info(self, user: Login, scope):
        return UserInfo(user.claims)


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self):
        return STATE.public_keyset()

    def end_session(self, end_session_request):
        claims = end_session_request.id_token_claims or {}
        for username in list(STATE.last_auth):
            if STATE.user_claims(username)["sub"] == claims.get("sub"):
                del STATE.last_auth[username]

    def _is_valid_post_logout_redirect_uri(self, client, post_logout_redirect_uri):
        return is_loopback_http(post_logout_redirect_uri)


def token_generator(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    token, lifetime = STATE.access_token(user, scope or "", client.get_client_id())
    return {"token_type": "Bearer", "access_token": token, "expires_in": lifetime, "scope": scope or ""}


def build_server() -> Server:
    server = Server(scopes_supported=None)
    server.register_token_generator("default", token_generator)
    server.register_grant(CodeGrant, [S256Required(required=True), OpenIDCodeFlow(require_nonce=True)])
    server.register_endpoint(EndSession)
    return server


# --- pages and test control -----------------------------------------------------------------


def json_response(status: int, body) -> tuple:
    return status, body, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


def html_response(status: int, body: str) -> tuple:
    return status, body, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]


def login_form(params: list[tuple[str, str]], message: str = "") -> tuple:
    hidden = "\n".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">'
        for k, v in params
        if k != "username"
    )
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in to the test identity provider</h1>
{note}
<form method="post" action="/authorize">
{hidden}
<label for="username">Username</label>
<input type="text" id="username" name="username" autocomplete="username" autofocus>
<button type="submit">Sign in</button>
</form>
</body></html>
"""
    return html_response(200, page)


def discovery() -> dict:
    base = STATE.issuer
    return {
        "issuer": STATE.discovery_issuer or base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "end_session_endpoint": f"{base}/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGS),
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "name",
                             "preferred_username", "email", "groups"],
        "acr_values_supported": ["urn:steward:test:pwd", "mfa", "urn:steward:test:mfa"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
    }


def authorize(server: Server, req: Request) -> tuple:
    STATE.stats["authorize"] += 1
    pairs = [(k, v) for k, values in req.payload.datalist.items() for v in values]
    params = {k: v[0] for k, v in req.payload.datalist.items()}
    if not params.get("state"):
        return json_response(400, {"error": "invalid_request", "error_description": "'state' is required"})
    username = req.form.get("username") if req.method == "POST" else None
    interactive = username is not None
    if username is None:
        hint = params.get("login_hint")
        username = hint if hint in STATE.users else None
    end_user = None
    if username is not None:
        if username not in STATE.users:
            return login_form(pairs, f"No user named {username!r}.")
        end_user = STATE.login(username, params, interactive)
    # Authorization requests carry no 'username': authlib sees exactly what the client sent.
    oauth_req = Request(req.method, req.uri, req.headers,
                        [(k, v) for k, v in pairs if k != "username"], [])
    try:
        grant = server.get_consent_grant(oauth_req, end_user=end_user)
    except OAuth2Error as error:
        return server.handle_error_response(oauth_req, error)
    if end_user is None:
        return login_form(pairs)
    return server.create_authorization_response(oauth_req, grant_user=end_user, grant=grant)


def userinfo(req: Request) -> tuple:
    auth = req.headers.get("Authorization") or ""
    scheme, _, token = auth.partition(" ")
    challenge = [("WWW-Authenticate", 'Bearer error="invalid_token"')]
    if scheme.lower() != "bearer" or not token:
        return 401, {"error": "invalid_token"}, challenge
    try:
        decoded = jwt.decode(token.strip(), STATE.public_keyset(), algorithms=list(ALGS))
        jwt.JWTClaimsRegistry(exp={"essential": True}, iss={"essential": True, "value": STATE.issuer},
                              aud={"essential": True, "value": STATE.api_audience}).validate(decoded.claims)
    except (JoseError, ValueError):
        return 401, {"error": "invalid_token"}, challenge
    sub = decoded.claims.get("sub")
    for username in STATE.users:
        claims = STATE.user_claims(username)
        if claims["sub"] == sub:
            claims.pop("amr", None)
            claims.pop("acr", None)
            return json_response(200, claims)
    return 401, {"error": "invalid_token"}, challenge


def mint(body: dict) -> tuple:
    username = body.get("user")
    if username not in STATE.users:
        return json_response(400, {"error": f"no user {username!r}"})
    now = int(time.time())
    alg = body.get("alg", "RS256")
    claims = STATE.user_claims(username)
    claims.update(
        {
            "iss": body.get("issuer", STATE.issuer),
            "aud": body.get("audience", STATE.api_audience),
            "azp": STATE.client.client_id,
            "scp": body.get("scope", "openid profile email"),
            "iat": now + int(body.get("issued_at", 0)),
            "exp": now + int(body.get("lifetime", 3600)),
            "jti": str(uuid.uuid4()),
            "auth_time": STATE.last_auth.get(username, now),
        }
    )
    claims.setdefault("amr", ["pwd"])
    if "not_before" in body:
        claims["nbf"] = now + int(body["not_before"])
    for name, value in (body.get("claims") or {}).items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value

    if alg in ("none", "HS256"):
        rsa = STATE.current("RS256")
        header = {"alg": alg, "kid": body.get("kid", rsa.kid), "typ": "JWT"}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        if alg == "none":
            return json_response(200, {"token": signing_input + ".", "kid": header["kid"]})
        public = rsa.as_dict(private=False)
        public.update({"kid": rsa.kid, "use": "sig", "alg": "RS256"})
        secret = {
            "pem": lambda: rsa.as_pem(private=False),
            "der": lambda: rsa.as_der(private=False),
            "jwk_json": lambda: json.dumps(public).encode(),
            "jwk_n": lambda: base64.urlsafe_b64decode(public["n"] + "=" * (-len(public["n"]) % 4)),
        }.get(body.get("hmac_secret", "pem"))
        if secret is None:
            return json_response(400, {"error": "hmac_secret must be pem, der, jwk_json or jwk_n"})
        mac = hmac.new(secret(), signing_input.encode(), hashlib.sha256).digest()
        return json_response(200, {"token": f"{signing_input}.{b64url(mac)}", "kid": header["kid"]})

    if alg not in ALGS:
        return json_response(400, {"error": f"alg must be one of {ALGS}, HS256 or none"})
    key = STATE.new_key(alg, published=False) if body.get("unpublished_key") else STATE.current(alg)
    if body.get("kid_of"):
        # Sign with `alg`'s key but name another algorithm's key: an alg/key-type mismatch.
        kid = STATE.current(body["kid_of"]).kid
    else:
        kid = body.get("kid", key.kid)
    token = jwt.encode({"alg": alg, "kid": kid, "typ": "at+jwt"}, claims, key, algorithms=[alg])
    return json_response(200, {"token": token, "kid": kid})


def test_control(path: str, body: dict) -> tuple:
    if path == "/_test/rotate-keys":
        STATE.rotate()
    elif path == "/_test/drop-old-keys":
        STATE.drop_old()
    elif path == "/_test/config":
        if "alg" in body:
            if body["alg"] not in ALGS:
                return json_response(400, {"error": f"alg must be one of {ALGS}"})
            STATE.alg = body["alg"]
        for name in ("code_ttl", "access_token_lifetime"):
            if name in body:
                setattr(STATE, name, int(body[name]))
        for name in ("discovery_issuer", "discovery_redirect"):
            if name in body:
                setattr(STATE, name, body[name])
    elif path == "/_test/mint":
        return mint(body)
    else:
        return json_response(404, {"error": "not found"})
    return json_response(200, {"kids": {alg: [k.kid for k in STATE.keys[alg]] for alg in ALGS}, "alg": STATE.alg})


# --- HTTP -----------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server_version = "steward-test-oidc/1"
    verbose = False

    def log_message(self, format, *args):  # noqa: A002
        if self.verbose:
            sys.stderr.write("oidc-provider: " + (format % args) + "\n")

    def do_GET(self):
        self.handle_request("GET")

    def do_POST(self):
        self.handle_request("POST")

    def handle_request(self, method: str):
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > 1 << 20:
            self.send(413, "", [])
            return
        raw = self.rfile.read(length) if length else b""
        query = parse_qsl(url.query, keep_blank_values=True)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        form = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True) \
            if content_type == "application/x-www-form-urlencoded" else []
        req = Request(method, STATE.issuer + self.path, self.headers, query, form)
        try:
            with STATE.lock:
                status, body, headers = self.route(method, url.path, req, raw, content_type)
        except Exception as e:  # a test peer reports its own bugs loudly
            import traceback

            traceback.print_exc()
            status, body, headers = json_response(500, {"error": "server_error", "error_description": repr(e)})
        self.send(status, body, headers)

    def route(self, method, path, req: Request, raw: bytes, content_type: str) -> tuple:
        server: Server = self.server.oauth  # type: ignore[attr-defined]
        if path == "/.well-known/openid-configuration" and method == "GET":
            STATE.stats["discovery"] += 1
            if STATE.discovery_redirect:
                return 302, "", [("Location", STATE.discovery_redirect)]
            return json_response(200, discovery())
        if path == "/jwks" and method == "GET":
            STATE.stats["jwks"] += 1
            return json_response(200, STATE.public_jwks())
        if path == "/authorize" and method in ("GET", "POST"):
            return authorize(server, req)
        if path == "/token" and method == "POST":
            STATE.stats["token"] += 1
            return server.create_token_response(req)
        if path == "/userinfo" and method in ("GET", "POST"):
            return userinfo(req)
        if path == "/logout" and method in ("GET", "POST"):
            try:
                end = server.validate_endpoint_request("end_session", req)
            except OAuth2Error as error:
                return server.handle_error_response(req, error)
            response = server.create_endpoint_response("end_session", end)
            return response or html_response(200, "<!doctype html><title>Signed out</title><p>You are signed out.</p>")
        if path == "/_test/stats" and method == "GET":
            return json_response(200, {"jwks_requests": STATE.stats["jwks"],
                                       "discovery_requests": STATE.stats["discovery"],
                                       "token_requests": STATE.stats["token"],
                                       "authorize_requests": STATE.stats["authorize"]})
        if path.startswith("/_test/") and method == "POST":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return json_response(400, {"error": "the body is not JSON"})
            return test_control(path, body)
        return json_response(404, {"error": "not found"})

    def send(self, status: int, body, headers):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers = list(headers) + [("Content-Type", "application/json")]
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main(argv=None) -> int:
    global STATE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--users", required=True, help="JSON file: {login name: {claim: value}}")
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--api-audience", default="api://steward")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    with open(args.users, encoding="utf-8") as f:
        users = json.load(f)
    if not isinstance(users, dict) or not all(isinstance(v, dict) for v in users.values()):
        p.error("--users must hold a JSON object of {login name: {claims}}")
    issuer = f"http://127.0.0.1:{args.port}"
    STATE = State(issuer, args.api_audience, users, Client(args.client_id, args.client_secret))
    Handler.verbose = args.verbose
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    httpd.oauth = build_server()  # type: ignore[attr-defined]
    print(f"oidc-provider: issuer {issuer}", file=sys.stderr, flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
