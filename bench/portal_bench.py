#!/usr/bin/env python3
"""Steward benchmark: My Access (the portal's server-rendered pages) for a user who may request
2,000 access packages, timed by the server itself.

Starts the test OpenID Connect provider (tests/oidc/provider.py, with the virtualenv's python)
and `steward serve` on free loopback ports (the provider configured as its sign-in, the request
log in JSON), then loads through the Graph API as the bootstrap administrator:

  - CATALOGS catalogs, each with one directory group added as a resource, and PACKAGES access
    packages spread over them, each granting its catalog group's Member role, each with one
    assignment policy for all member users (`allMemberUsers`), every other one with one
    approval stage by the requestor's manager (justification required), the rest approved
    automatically;
  - the requestor Rita and her manager Max, and COLLEAGUES more users who report to Max.

Then, as people do it:
  - Rita and Max sign in through the provider (/auth/login, the provider's authorize with a
    `login_hint`, /auth/callback): each gets a session cookie, as a browser would;
  - Rita submits MINE_PENDING requests needing approval and MINE_DELIVERED approved
    automatically through the portal's own form (GET the package page, POST its form with the
    page's CSRF token), and the worker delivers the latter;
  - each colleague submits one request needing Max's approval through the Graph API with a
    personal token (`steward token create --user`);
  - Max approves or denies DECIDED of what waits for him through the portal's form.

Then it times GET requests, ROUNDS each, one keep-alive connection per user, after a warm-up:

   1. Rita: /access-packages (first page: 25 of the packages she may request, the catalog list)
   2. Rita: /access-packages?search=Package+1 (1,100 or so match)
   3. Rita: /access-packages?catalog=<id> (round robin over the catalogs)
   4. Rita: /access-packages?page=40 (a later page)
   5. Rita: /access-packages/<id> (round robin over 50 packages, half with an approver)
   6. Rita: /requests
   7. Rita: /access
   8. Max: /approvals (what waits for him, and what he decided)
   9. Max: /approvals/<id> (round robin over what waits for him)
  10. Rita: /reviews, when the server has it (a 404 skips the workload)

"Server time" is the `elapsed_ms` the server logs for each request (the `request finished` line of
`steward_web::request_id`, matched by the `request-id` response header): from the moment the
request reached the router to the response head, without the network. The client's own time
(request sent to body read, loopback) is printed beside it.

On PostgreSQL it runs VACUUM ANALYZE (with psql) after loading, as autovacuum does on a default
server soon after a bulk load (the machine this was written on has autovacuum off).

Usage:
  bench/portal_bench.py --binary target/release/steward --database-url sqlite:///tmp/portal.db
  bench/portal_bench.py --binary target/release/steward --database-url postgres://postgres@127.0.0.1:5432/steward_portal
The database must be empty. --python defaults to $STEWARD_VENV/bin/python, else .venv/bin/python
(`bash scripts/python-venv.sh` makes it).
"""
import argparse
import http.client
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

EM = "/v1.0/identityGovernance/entitlementManagement"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what, proc, log):
    for _ in range(600):
        if proc.poll() is not None:
            sys.exit(f"{what} exited ({proc.returncode}); log: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not listen on {port}; log: {log}")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


class Api:
    """The Graph API with a bearer token, on one keep-alive connection."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, ok=(200, 201, 204)):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        if r.status not in ok:
            raise RuntimeError(f"{method} {path} -> {r.status}: {raw[:400]!r}")
        return json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/json") else None


class Browser:
    """A browser without JavaScript: its cookies, one keep-alive connection to Steward."""

    def __init__(self, port):
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies = {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def _keep(self, resp):
        for k, v in resp.getheaders():
            if k.lower() != "set-cookie":
                continue
            pair = v.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if not value or "Max-Age=0" in v:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def send(self, method, path, form=None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.origin
        t0 = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        text = r.read().decode("utf-8", "replace")
        ms = (time.perf_counter() - t0) * 1000
        self._keep(r)
        return r.status, r.getheader("Location", ""), r.getheader("request-id", ""), text, ms

    def get(self, path):
        return self.send("GET", path)

    def sign_in(self, provider_port, login):
        status, to, _, text, _ = self.get("/auth/login?returnTo=/access-packages")
        if status != 303 or not to.startswith(f"http://127.0.0.1:{provider_port}/"):
            sys.exit(f"/auth/login answered {status} {to}: {text[:300]}")
        u = urllib.parse.urlsplit(to)
        idp = http.client.HTTPConnection("127.0.0.1", provider_port, timeout=30)
        idp.request("GET", f"{u.path}?{u.query}&login_hint={urllib.parse.quote(login)}")
        r = idp.getresponse()
        r.read()
        back = r.getheader("Location", "")
        if r.status not in (302, 303) or not back.startswith(self.origin + "/auth/callback?"):
            sys.exit(f"the provider answered {r.status} {back}")
        status, to, _, text, _ = self.get(back[len(self.origin):])
        if status != 303 or "__Host-steward_session" not in self.cookies:
            sys.exit(f"/auth/callback answered {status}: {text[:300]}")


def csrf_of(html):
    m = re.search(r'name="csrf_token" value="([^"]*)"', html)
    if not m:
        sys.exit(f"no CSRF token in the page: {html[:300]}")
    return m.group(1)


def run_threads(n, items, work):
    parts = [items[i::n] for i in range(n)]
    errors = []

    def wrap(part):
        try:
            work(part)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(p,)) for p in parts]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def load(port, token, args):
    api = Api(port, token)
    users = {}

    def user(name, upn):
        users[upn] = api.call("POST", "/v1.0/users", {"displayName": name, "userPrincipalName": upn})["id"]
        return users[upn]

    rita = user("Rita Requestor", "rita@contoso.com")
    mx = user("Max Manager", "max@contoso.com")
    colleagues = [user(f"Colleague {i:03}", f"colleague{i:03}@contoso.com") for i in range(args.colleagues)]
    for u in [rita, *colleagues]:
        api.call("PUT", f"/v1.0/users/{u}/manager/$ref",
                 {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{mx}"})
    catalogs = []
    for c in range(args.catalogs):
        cat = api.call("POST", f"{EM}/catalogs", {"displayName": f"Catalog {c:02}",
                                                    "description": f"Benchmark catalog {c}"})["id"]
        group = api.call("POST", "/v1.0/groups", {"displayName": f"Group of catalog {c:02}"})["id"]
        api.call("POST", f"{EM}/resourceRequests", {"requestType": "adminAdd", "catalog": {"id": cat},
                                                     "resource": {"originId": group, "originSystem": "AadGroup"}})
        q = urllib.parse.quote(f"originId eq 'Member_{group}'")
        role = api.call("GET", f"{EM}/catalogs/{cat}/resourceRoles?$filter={q}&$expand=resource($expand=scopes)")
        role = role["value"][0]
        catalogs.append((cat, group, role))

    packages = [None] * args.packages

    def make(part):
        w = Api(port, token)
        for n in part:
            cat, group, role = catalogs[n % args.catalogs]
            approval = n % 2 == 0
            pid = w.call("POST", f"{EM}/accessPackages", {
                "displayName": f"Package {n:04}",
                "description": f"Benchmark package {n}, in catalog {n % args.catalogs}",
                "catalog": {"id": cat},
            })["id"]
            w.call("POST", f"{EM}/accessPackages/{pid}/resourceRoleScopes", {
                "role": {"id": role["id"], "originId": role["originId"], "originSystem": "AadGroup",
                         "resource": {"id": role["resource"]["id"]}},
                "scope": {"id": role["resource"]["scopes"][0]["id"], "originId": group, "originSystem": "AadGroup"},
            })
            stages = [{"durationBeforeAutomaticDenial": "P14D",
                       "primaryApprovers": [{"@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1}]}]
            w.call("POST", f"{EM}/assignmentPolicies", {
                "accessPackage": {"id": pid}, "displayName": "All members", "allowedTargetScope": "allMemberUsers",
                "expiration": {"type": "afterDuration", "duration": "P90D"},
                "requestorSettings": {"enableTargetsToSelfAddAccess": True, "enableTargetsToSelfRemoveAccess": True,
                                      "enableTargetsToSelfUpdateAccess": True, "allowCustomAssignmentSchedule": True},
                "requestApprovalSettings": {"isApprovalRequiredForAdd": approval,
                                            "isRequestorJustificationRequired": approval,
                                            "stages": stages if approval else []},
            })
            packages[n] = pid

    run_threads(args.threads, list(range(args.packages)), make)
    return rita, mx, colleagues, [c for c, _, _ in catalogs], packages


def time_workload(b, paths, rounds, warmup=5):
    """GETs `paths` round robin: `rounds` timed after `warmup`; [(request id, client ms)]."""
    out = []
    for i in range(warmup + rounds):
        path = paths[i % len(paths)]
        status, _, rid, text, ms = b.get(path)
        if status != 200:
            return None if status == 404 else sys.exit(f"GET {path} answered {status}: {text[:300]}")
        if i >= warmup:
            out.append((rid, ms))
    return out


def server_times(log_path):
    """request id -> elapsed_ms from the server's JSON request log."""
    times = {}
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if "request finished" not in line:
                continue
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            rid = (ev.get("span") or {}).get("request_id")
            ms = (ev.get("fields") or {}).get("elapsed_ms")
            if rid and ms is not None:
                times[rid] = float(ms)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--python", default=None, help="a python with authlib (the test virtualenv's)")
    ap.add_argument("--catalogs", type=int, default=20)
    ap.add_argument("--packages", type=int, default=2000)
    ap.add_argument("--colleagues", type=int, default=40, help="users reporting to Max who each request once")
    ap.add_argument("--mine-pending", type=int, default=25, help="Rita's requests waiting for approval")
    ap.add_argument("--mine-delivered", type=int, default=25, help="Rita's requests approved automatically")
    ap.add_argument("--decided", type=int, default=20, help="decisions Max makes before the timing")
    ap.add_argument("--threads", type=int, default=2, help="loader threads")
    ap.add_argument("--rounds", type=int, default=300, help="timed requests per workload")
    ap.add_argument("--keep-log", action="store_true", help="keep the server's log (its path is printed)")
    args = ap.parse_args()

    python = args.python or os.path.join(os.environ.get("STEWARD_VENV") or os.path.join(ROOT, ".venv"), "bin", "python")
    work = tempfile.mkdtemp(prefix="steward-portal-bench-")
    users_file = os.path.join(work, "users.json")
    with open(users_file, "w") as f:
        json.dump({login: {"preferred_username": f"{login}@contoso.com", "email": f"{login}@contoso.com",
                           "name": name} for login, name in [("rita", "Rita Requestor"), ("max", "Max Manager")]}, f)
    idp_port, port = free_port(), free_port()
    client_id, client_secret, token = "steward-bench", secrets.token_hex(16), secrets.token_hex(16)
    idp_log = os.path.join(work, "provider.log")
    idp = subprocess.Popen([python, os.path.join(ROOT, "tests", "oidc", "provider.py"), "--port", str(idp_port),
                            "--users", users_file, "--client-id", client_id, "--client-secret", client_secret],
                           stdout=subprocess.DEVNULL, stderr=open(idp_log, "w"))
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, STEWARD_BOOTSTRAP_ADMIN_TOKEN=token, STEWARD_LOG="steward_web::request_id=info,warn",
               STEWARD_LOG_FORMAT="json", STEWARD_PUBLIC_URL=base, STEWARD_OIDC__ISSUER=f"http://127.0.0.1:{idp_port}",
               STEWARD_OIDC__CLIENT_ID=client_id, STEWARD_OIDC__CLIENT_SECRET=client_secret)
    env.pop("STEWARD_CONFIG", None)
    log_path = os.path.join(work, "serve.log")
    db = ["--database-url", args.database_url, "--data-dir", os.path.join(work, "data")]
    srv = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}", *db],
                           env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    try:
        wait_for(idp_port, "the OpenID Connect provider", idp, idp_log)
        wait_for(port, "steward serve", srv, log_path)
        t0 = time.perf_counter()
        rita, mx, colleagues, catalogs, packages = load(port, token, args)
        load_s = time.perf_counter() - t0

        # Rita's requests, through the portal's form.
        rb, mb = Browser(port), Browser(port)
        rb.sign_in(idp_port, "rita")
        mb.sign_in(idp_port, "max")
        wanted = [p for i, p in enumerate(packages) if i % 2 == 0][: args.mine_pending] + \
                 [p for i, p in enumerate(packages) if i % 2 == 1][: args.mine_delivered]
        for pid in wanted:
            status, _, _, page, _ = rb.get(f"/access-packages/{pid}")
            if status != 200:
                sys.exit(f"package page {pid}: {status}")
            status, to, _, text, _ = rb.send("POST", f"/access-packages/{pid}/request", {
                "csrf_token": csrf_of(page), "justification": "Needed for the quarter's work"})
            if status != 303 or not to.startswith("/requests/"):
                sys.exit(f"request for {pid}: {status} {to} {text[:500]}")
        # The colleagues' requests, through the API.
        pending = [p for i, p in enumerate(packages) if i % 2 == 0][args.mine_pending:]
        for i, uid in enumerate(colleagues):
            out = subprocess.run([args.binary, "token", "create", "--name", f"bench {i}", "--user", uid, *db],
                                 env=env, check=True, capture_output=True, text=True).stdout
            secret = [w for w in out.split() if w.startswith("stw_")][-1]
            Api(port, secret).call("POST", f"{EM}/assignmentRequests", {
                "requestType": "userAdd", "justification": "Onboarding",
                "assignment": {"accessPackageId": pending[i % len(pending)]}})
        # Max decides some.
        status, _, _, page, _ = mb.get("/approvals")
        waiting = list(dict.fromkeys(re.findall(r'<h3><a href="/approvals/([0-9a-f-]{36})"', page)))
        for i, rid in enumerate(waiting[: args.decided]):
            status, _, _, detail, _ = mb.get(f"/approvals/{rid}")
            stage = re.search(r'name="stage" value="([^"]+)"', detail)
            if not stage:
                sys.exit(f"no decision form on /approvals/{rid}")
            status, to, _, text, _ = mb.send("POST", f"/approvals/{rid}/decide", {
                "csrf_token": csrf_of(detail), "stage": stage.group(1), "justification": "Checked",
                "decision": "deny" if i % 4 == 3 else "approve"})
            if status != 303:
                sys.exit(f"decision on {rid}: {status} {text[:300]}")
        # Wait for the worker to deliver what was approved.
        api = Api(port, token)
        for _ in range(600):
            q = urllib.parse.quote("state eq 'delivering'")
            if not api.call("GET", f"{EM}/assignmentRequests?$filter={q}&$top=1")["value"]:
                break
            time.sleep(0.1)
        analyzed = False
        if args.database_url.startswith("postgres"):
            subprocess.run(["psql", args.database_url, "-qc", "VACUUM ANALYZE"], check=True)
            analyzed = True
        status, _, _, page, _ = mb.get("/approvals")
        waiting = list(dict.fromkeys(re.findall(r'<h3><a href="/approvals/([0-9a-f-]{36})"', page)))
        decided_rows = page.count("<tr><td><a href=\"/approvals/")

        workloads = [
            ("Rita: /access-packages (first page)", rb, ["/access-packages"]),
            ("Rita: /access-packages?search=Package+1", rb, ["/access-packages?search=Package+1"]),
            ("Rita: /access-packages?catalog=<id>, round robin", rb, [f"/access-packages?catalog={c}" for c in catalogs]),
            ("Rita: /access-packages?page=40", rb, ["/access-packages?page=40"]),
            ("Rita: /access-packages/<id>, 50 packages", rb,
             [f"/access-packages/{p}" for p in packages[:: max(1, len(packages) // 50)][:50]]),
            ("Rita: /requests", rb, ["/requests"]),
            ("Rita: /access", rb, ["/access"]),
            ("Max: /approvals", mb, ["/approvals"]),
            ("Max: /approvals/<id>, round robin over what waits", mb, [f"/approvals/{r}" for r in waiting] or ["/approvals"]),
            ("Rita: /reviews", rb, ["/reviews"]),
        ]
        load_before = loadavg()
        measured = []
        for name, b, paths in workloads:
            got = time_workload(b, paths, args.rounds)
            if got is not None:
                measured.append((name, got))
        load_after = loadavg()
        time.sleep(0.5)  # the last log lines
        st = server_times(log_path)

        backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(f"\n### {backend}: {args.packages} requestable packages in {args.catalogs} catalogs\n")
        print(f"- load through the API ({args.threads} client threads): {load_s:.1f} s")
        print(f"- Rita: {args.mine_pending} requests waiting for Max, {args.mine_delivered} delivered; Max: "
              f"{len(waiting)} waiting shown, {decided_rows} decisions in his history")
        print(f"- machine load average (1 min) when the timed workloads started: {load_before}; ended: {load_after}")
        if backend == "PostgreSQL":
            print("- after loading: " + ("VACUUM ANALYZE" if analyzed else "no VACUUM ANALYZE"))
        print()
        print("| page | requests | server p50 ms | server p95 ms | server p99 ms | server max ms | client p50 ms | client p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, got in measured:
            server = [st[r] for r, _ in got if r in st]
            client = [ms for _, ms in got]
            if len(server) != len(got):
                print(f"(warning: {len(got) - len(server)} requests of '{name}' not found in the server log)",
                      file=sys.stderr)
            if not server:
                server = [float("nan")]
            print(f"| {name} | {len(got)} | {pct(server, 50):.2f} | {pct(server, 95):.2f} | {pct(server, 99):.2f} "
                  f"| {max(server):.2f} | {pct(client, 50):.2f} | {pct(client, 99):.2f} |")
        if args.keep_log:
            print(f"\nserver log: {log_path}")
    finally:
        for p in (srv, idp):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
