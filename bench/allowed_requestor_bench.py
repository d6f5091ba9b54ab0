#!/usr/bin/env python3
"""Steward benchmark: accessPackages/filterByCurrentUser(on='allowedRequestor') for a user among
many access packages and assignment policies, timed from an HTTP client.

Starts `steward serve` on a free loopback port against the given database and loads, through the
Graph API with a few client threads: USERS directory users and GROUPS groups (the requesting
member is in MY_GROUPS of them), CATALOGS catalogs holding PACKAGES access packages, and
POLICIES assignment policies (one per package, the rest on random packages) with this mix:

  40%  scope allMemberUsers (20%), allDirectoryUsers (12%) or allExternalUsers (8%)
  30%  specificDirectoryUsers naming 1-3 groups or single users
  30%  specificDirectoryUsers with an attributeRuleMembers rule (sometimes two), drawn from
       RULES distinct dynamic-membership rules over department, city, jobTitle and country
  10%  of all policies do not let targets request for themselves (enableTargetsToSelfAddAccess
       false), whatever their scope

Two users request: a member of MY_GROUPS groups, and a guest in no group. For each, it creates
a personal token with `steward token create --user`, checks that the packages served (all
pages, $top=999) are exactly those the script itself computes from what it loaded, then reads
the server's VmRSS from /proc and times requests, one keep-alive connection per user (request
sent to body fully read):

  1. member: the first page as a Graph client asks for it (no query options; 100 rows), ROUNDS times;
  2. member: the first page and the next PAGES pages by following @odata.nextLink, ROUNDS/10 times;
  3. member: $filter=startswith(displayName,'Package 1')&$orderby=displayName desc&$top=50, first page;
  4. member: the first page with $count=true;
  5. and 6. guest: as 1. (ROUNDS/2 times) and 2.

On PostgreSQL it runs VACUUM ANALYZE (with psql) after loading, as autovacuum does on a default
server soon after a bulk load; --no-analyze times the planner without statistics instead.

Prints a Markdown section: load times, VmRSS, the machine's load average, and p50/p95/p99/max
per workload. The data is generated from --seed, so two runs load the same policies.

Usage: bench/allowed_requestor_bench.py --binary target/release/steward --database-url sqlite:///tmp/b.db
"""
import argparse
import http.client
import json
import os
import random
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
REQUESTABLE = f"{EM}/accessPackages/filterByCurrentUser(on='allowedRequestor')"

DEPARTMENTS = [f"Dept {i:02}" for i in range(30)]
CITIES = [f"City {i:02}" for i in range(40)]
TITLES = [f"Title {i:02}" for i in range(20)]
COUNTRIES = ["DE", "FR", "US", "GB", "NL", "SE", "PL", "ES", "IT", "JP"]
ATTRS = {"department": DEPARTMENTS, "city": CITIES, "jobTitle": TITLES, "country": COUNTRIES}
# The requesting users: a member in MY_GROUPS groups, and a guest in none (fewer packages: the
# allDirectoryUsers and allExternalUsers policies, and what rules or single-user entries give).
MEMBER = {"department": "Dept 07", "city": "City 12", "jobTitle": "Title 03", "country": "DE"}
GUEST = {"department": "Dept 21", "city": "City 33", "jobTitle": "Title 17", "country": "JP", "userType": "Guest"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        raw = r.read()
        if r.status >= 400:
            raise RuntimeError(f"{method} {path} -> {r.status}: {raw[:300]!r}")
        return json.loads(raw) if raw and r.getheader("Content-Type", "").startswith("application/json") else raw


def loadavg():
    """The 1-minute load average: other work on the machine shows in the latencies."""
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# Dynamic membership rules: a small tree rendered to Entra's syntax and evaluated here the way
# Steward's evaluator does (text compared case-insensitively, -match a case-insensitive search).

def random_rule(rng):
    def leaf():
        attr = rng.choice(list(ATTRS))
        values = ATTRS[attr]
        kind = rng.choices(["eq", "in", "startsWith", "match"], [4, 3, 2, 1])[0]
        if kind == "eq":
            return ("eq", attr, rng.choice(values))
        if kind == "in":
            return ("in", attr, tuple(sorted(rng.sample(values, 3))))
        if kind == "startsWith":
            return ("startsWith", attr, rng.choice(values)[:-1])
        v = rng.choice(values)
        # Values are letters, digits and a space: no regex metacharacters to escape (Python's
        # re.escape would escape the space, which Rust's regex refuses).
        return ("match", attr, f"^{v[:-1]}[0-{rng.randint(1, 9)}]$")

    shape = rng.choices(["leaf", "not", "and", "or"], [4, 1, 3, 2])[0]
    if shape == "leaf":
        return leaf()
    if shape == "not":
        return ("not", leaf())
    return (shape, leaf(), leaf())


def render(rule):
    op = rule[0]
    if op == "not":
        return f"-not ({render(rule[1])})"
    if op in ("and", "or"):
        return f"({render(rule[1])}) -{op} ({render(rule[2])})"
    _, attr, v = rule
    if op == "in":
        return f"user.{attr} -in [{', '.join(json.dumps(x) for x in v)}]"
    return f"user.{attr} -{op} {json.dumps(v)}"


def matches(rule, user):
    op = rule[0]
    if op == "not":
        return not matches(rule[1], user)
    if op == "and":
        return matches(rule[1], user) and matches(rule[2], user)
    if op == "or":
        return matches(rule[1], user) or matches(rule[2], user)
    _, attr, v = rule
    have = user.get(attr)
    if have is None:
        return False
    have = have.lower()
    if op == "eq":
        return have == v.lower()
    if op == "in":
        return have in [x.lower() for x in v]
    if op == "startsWith":
        return have.startswith(v.lower())
    return re.search(v, have, re.IGNORECASE) is not None


def plan(args, rng):
    """Everything to load, and the packages (by index) the member and the guest may request.
    User index args.users is the member, args.users + 1 the guest."""
    rules = {}
    while len(rules) < args.rules:
        r = random_rule(rng)
        rules[render(r)] = r
    rules = list(rules.items())
    my_groups = set(rng.sample(range(args.groups), args.my_groups))
    policies = []
    admitted = (set(), set())
    for i in range(args.policies):
        pkg = i if i < args.packages else rng.randrange(args.packages)
        self_add = rng.random() >= 0.10
        kind = rng.random()
        targets = []
        member = guest = False
        if kind < 0.40:
            scope = rng.choices(["allMemberUsers", "allDirectoryUsers", "allExternalUsers"], [20, 12, 8])[0]
            member = scope != "allExternalUsers"
            guest = scope != "allMemberUsers"
        elif kind < 0.70:
            scope = "specificDirectoryUsers"
            for _ in range(rng.randint(1, 3)):
                if rng.random() < 0.7:
                    g = rng.randrange(args.groups)
                    targets.append(("group", g))
                    member = member or g in my_groups
                else:
                    u = rng.randrange(args.users + 2)
                    targets.append(("user", u))
                    member = member or u == args.users
                    guest = guest or u == args.users + 1
        else:
            scope = "specificDirectoryUsers"
            for _ in range(1 if rng.random() < 0.8 else 2):
                text, r = rng.choice(rules)
                targets.append(("rule", text))
                member = member or matches(r, MEMBER)
                guest = guest or matches(r, GUEST)
        policies.append((pkg, scope, targets, self_add))
        if self_add and member:
            admitted[0].add(pkg)
        if self_add and guest:
            admitted[1].add(pkg)
    return rules, my_groups, policies, admitted


def run_threads(n, items, work):
    chunk = (len(items) + n - 1) // n
    errors = []

    def wrap(part):
        try:
            work(part)
        except Exception as e:  # reported after join
            errors.append(e)

    ts = [threading.Thread(target=wrap, args=(items[t * chunk:(t + 1) * chunk],)) for t in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def load(port, token, args, rng, policies, my_groups):
    c = Client(port, token)
    timings = {}
    t0 = time.perf_counter()
    user_ids = []
    for i in range(args.users):
        body = {"displayName": f"User {i:04}", "userPrincipalName": f"user{i:04}@bench.example"}
        body.update({a: rng.choice(v) for a, v in ATTRS.items()})
        user_ids.append(c.call("POST", "/v1.0/users", body)["id"])
    requesters = [c.call("POST", "/v1.0/users", dict(MEMBER, displayName="Requester", userPrincipalName="member@bench.example"))["id"],
                  c.call("POST", "/v1.0/users", dict(GUEST, displayName="Guest requester", userPrincipalName="guest@bench.example"))["id"]]
    user_ids += requesters
    group_ids = []
    for i in range(args.groups):
        g = c.call("POST", "/v1.0/groups", {"displayName": f"Group {i:04}", "mailNickname": f"group{i:04}",
                                            "mailEnabled": False, "securityEnabled": True})
        group_ids.append(g["id"])
        members = set(rng.sample(range(args.users), 5))
        if i in my_groups:
            members.add(args.users)
        for m in members:
            c.call("POST", f"/v1.0/groups/{g['id']}/members/$ref",
                   {"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{user_ids[m]}"})
    timings["directory"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cat_ids = [c.call("POST", f"{EM}/catalogs", {"displayName": f"Catalog {i:04}"})["id"] for i in range(args.catalogs)]
    pkg_ids = [None] * args.packages

    def packages(part):
        w = Client(port, token)
        for n in part:
            ci = n % args.catalogs
            pkg_ids[n] = w.call("POST", f"{EM}/accessPackages", {
                "displayName": f"Package {n:05} of catalog {ci:04}",
                "description": "Benchmark package",
                "isHidden": n % 10 == 0,
                "catalog": {"id": cat_ids[ci]},
            })["id"]

    run_threads(args.threads, list(range(args.packages)), packages)
    timings["packages"] = time.perf_counter() - t0

    t0 = time.perf_counter()

    def subject(kind, x):
        if kind == "group":
            return {"@odata.type": "#microsoft.graph.groupMembers", "groupId": group_ids[x]}
        if kind == "user":
            return {"@odata.type": "#microsoft.graph.singleUser", "userId": user_ids[x]}
        return {"@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": x}

    def policy_bodies(part):
        w = Client(port, token)
        for i in part:
            pkg, scope, targets, self_add = policies[i]
            body = {"accessPackage": {"id": pkg_ids[pkg]}, "displayName": f"Policy {i:05}",
                    "allowedTargetScope": scope,
                    "expiration": {"type": "afterDuration", "duration": "P90D"},
                    "requestorSettings": {"enableTargetsToSelfAddAccess": self_add,
                                          "enableTargetsToSelfRemoveAccess": True}}
            if targets:
                body["specificAllowedTargets"] = [subject(k, x) for k, x in targets]
            w.call("POST", f"{EM}/assignmentPolicies", body)

    run_threads(args.threads, list(range(len(policies))), policy_bodies)
    timings["policies"] = time.perf_counter() - t0
    return requesters, pkg_ids, timings


def timed(c, path, max_pages):
    times, rows, pages, count = [], 0, 0, None
    while path and pages < max_pages:
        t0 = time.perf_counter()
        body = c.call("GET", path)
        times.append((time.perf_counter() - t0) * 1000)
        rows += len(body["value"])
        count = body.get("@odata.count", count)
        pages += 1
        link = body.get("@odata.nextLink")
        path = None
        if link:
            u = urllib.parse.urlsplit(link)
            path = f"{u.path}?{u.query}"
    return times, rows, count


def pct(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--catalogs", type=int, default=500)
    ap.add_argument("--packages", type=int, default=20000)
    ap.add_argument("--policies", type=int, default=25000)
    ap.add_argument("--rules", type=int, default=300, help="distinct membership rules")
    ap.add_argument("--users", type=int, default=300, help="directory users besides the two requesting")
    ap.add_argument("--groups", type=int, default=300)
    ap.add_argument("--my-groups", type=int, default=20, help="groups the requesting member is in")
    ap.add_argument("--threads", type=int, default=2, help="loader threads")
    ap.add_argument("--rounds", type=int, default=500, help="timed requests of the first page")
    ap.add_argument("--pages", type=int, default=5, help="nextLink pages followed after the first")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-analyze", action="store_true",
                    help="PostgreSQL: time without running VACUUM ANALYZE (with psql) after loading")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rules, my_groups, policies, admitted = plan(args, rng)

    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, STEWARD_BOOTSTRAP_ADMIN_TOKEN=token, STEWARD_LOG="warn")
    log = tempfile.NamedTemporaryFile(prefix="steward-bench-", suffix=".log", delete=False)
    data_dir = tempfile.mkdtemp(prefix="steward-bench-")
    db = ["--database-url", args.database_url, "--data-dir", data_dir]
    srv = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}", *db], env=env, stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                cc = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                cc.request("GET", "/readyz")
                if cc.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            sys.exit(f"server did not become ready; log: {log.name}")

        requesters, pkg_ids, load_s = load(port, token, args, rng, policies, my_groups)
        rss_loaded = rss_mib(srv.pid)
        analyzed = False
        if args.database_url.startswith("postgres") and not args.no_analyze:
            # What autovacuum does within a minute or so of a bulk load on a default server:
            # statistics for the planner (without them it guesses how many packages a user may
            # request) and the visibility map (index-only scans without heap visits).
            subprocess.run(["psql", args.database_url, "-qc", "VACUUM ANALYZE"], check=True)
            analyzed = True
        clients = []
        for who, uid, adm in zip(["member", "guest"], requesters, admitted):
            secret = subprocess.run([args.binary, "token", "create", "--name", f"bench {who}", "--user", uid, *db],
                                    env=env, check=True, capture_output=True, text=True).stdout.strip()
            c = Client(port, secret)
            # The answer must be right before its speed means anything.
            want = {pkg_ids[i] for i in adm}
            got = []
            path = f"{REQUESTABLE}?$top=999"
            while path:
                body = c.call("GET", path)
                got += [p["id"] for p in body["value"]]
                link = body.get("@odata.nextLink")
                path = None
                if link:
                    u = urllib.parse.urlsplit(link)
                    path = f"{u.path}?{u.query}"
            if len(got) != len(set(got)) or set(got) != want:
                sys.exit(f"WRONG ANSWER for the {who}: served {len(got)} packages ({len(set(got))} distinct), "
                         f"expected {len(want)}; missing {len(want - set(got))} (e.g. {sorted(want - set(got))[:3]}), "
                         f"extra {len(set(got) - want)} (e.g. {sorted(set(got) - want)[:3]})")
            for _ in range(20):  # warm-up: connection, caches
                c.call("GET", REQUESTABLE)
            clients.append((who, c, len(want)))

        member, guest = clients[0][1], clients[1][1]
        workloads = [
            ("member: first page, no options (100 rows)", member, REQUESTABLE, args.rounds, 1),
            (f"member: first page + {args.pages} nextLink pages (100 rows each)", member, REQUESTABLE,
             max(1, args.rounds // 10), 1 + args.pages),
            ("member: startswith(displayName,'Package 1'), $orderby=displayName desc, $top=50, first page", member,
             f"{REQUESTABLE}?$filter=startswith(displayName,%27Package%201%27)&$orderby=displayName%20desc&$top=50",
             max(1, args.rounds // 5), 1),
            ("member: $count=true, first page", member, f"{REQUESTABLE}?$count=true", max(1, args.rounds // 5), 1),
            ("guest: first page, no options (100 rows)", guest, REQUESTABLE, max(1, args.rounds // 2), 1),
            (f"guest: first page + {args.pages} nextLink pages (100 rows each)", guest, REQUESTABLE,
             max(1, args.rounds // 10), 1 + args.pages),
        ]
        load_before = loadavg()
        results = []
        for name, c, path, rounds, pages in workloads:
            times, rows, count = [], 0, None
            for _ in range(rounds):
                t, rows, count = timed(c, path, pages)
                times += t
            results.append((name, len(times), rows, count, times))
        rss_after = rss_mib(srv.pid)
        load_after = loadavg()

        backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        n_rules = sum(1 for p in policies if any(k == "rule" for k, _ in p[2]))
        print(f"\n### {backend}: {args.packages} access packages, {args.policies} policies "
              f"({n_rules} with attribute rules, {args.rules} distinct rules)\n")
        print(f"- load through the API ({args.threads} client threads): directory ({args.users + 2} users, "
              f"{args.groups} groups) {load_s['directory']:.1f} s; {args.packages} packages "
              f"{load_s['packages']:.1f} s; {args.policies} policies {load_s['policies']:.1f} s "
              f"({args.policies / load_s['policies']:.0f} policies/s)")
        print("- packages each requesting user may request (checked first: every page served with $top=999 is "
              "exactly the set the script computes): " + ", ".join(f"{who} {n}" for who, _, n in clients))
        print(f"- server resident memory (VmRSS) after loading: {rss_loaded:.1f} MiB; after the workloads: "
              f"{rss_after:.1f} MiB")
        print(f"- machine load average (1 min) when the timed workloads started: {load_before}; when they "
              f"ended: {load_after}")
        if args.database_url.startswith("postgres"):
            print("- after loading: " + ("VACUUM ANALYZE (planner statistics, visibility map)" if analyzed else
                                         "no VACUUM ANALYZE (--no-analyze): no planner statistics"))
        print()
        print("| workload | requests timed | rows (last pass) | p50 ms | p95 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, n, rows, count, times in results:
            label = name if count is None else f"{name} (@odata.count {count})"
            print(f"| {label} | {n} | {rows} | {pct(times, 50):.2f} | {pct(times, 95):.2f} | {pct(times, 99):.2f} "
                  f"| {max(times):.2f} |")
    finally:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
