"""Three `steward serve` processes on one PostgreSQL database, each on its own test clock.

5,000 people get an access package that grants membership of one group, through a policy
with a fixed end date; the adminAdd requests are spread over the three servers. Once every
assignment is delivered, all three clocks are set past the end date and the three background
workers (not this test) do the expiry: the singleton sweep ends the assignments, the three
workers share the revocations. Then SQL checks that every assignment expired exactly once
(one `Expire` audit event each), every revocation ran exactly once, and the group's members
are exactly the holders of active assignments (nobody).

Needs (scripts/test.sh sets them):
  DATABASE_URL      a PostgreSQL superuser URL; a fresh database is created next to it and dropped
  STEWARD_TEST_BIN  the steward binary
and `psql` on PATH. Missing any of them fails the test: nothing is skipped.

Nothing sleeps on a fixed timing: the test waits for readiness and for the queue to empty by
polling every 50-100 ms, with generous deadlines that only matter when something hangs.
"""
from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from typing import Any, Iterator

import httpx
import pytest

N = int(os.environ.get("STEWARD_E2E_ASSIGNMENTS", "5000"))
START = "2031-03-01T09:00:00Z"
END = "2031-04-01T00:00:00Z"  # the policy's fixed end date (expiration afterDateTime)
AFTER_END = "2031-04-01T01:00:00Z"
CONCURRENCY = 24  # requests in flight, spread over the three servers
EM = "/v1.0/identityGovernance/entitlementManagement"
WAIT_DELIVERED_S = 120
WAIT_EXPIRED_S = 120


def fail_setup(msg: str) -> None:
    pytest.fail(msg, pytrace=False)


class Timer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.last = self.t0
        self.rows: list[tuple[str, float]] = []

    def lap(self, what: str) -> None:
        t = time.monotonic()
        self.rows.append((what, t - self.last))
        print(f"  {what:<58} {t - self.last:7.2f} s", flush=True)
        self.last = t

    def total(self) -> None:
        print(f"  {'total':<58} {time.monotonic() - self.t0:7.2f} s", flush=True)


# ---------------------------------------------------------------------------------------------
# PostgreSQL through psql
# ---------------------------------------------------------------------------------------------

def psql(url: str, sql: str) -> str:
    out = subprocess.run(["psql", url, "-X", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"psql failed ({out.returncode}) on {sql!r}: {out.stderr}")
    return out.stdout.strip()


def scalar(url: str, sql: str) -> int:
    return int(psql(url, sql))


def with_database(url: str, name: str) -> str:
    p = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, p.fragment))


@contextmanager
def fresh_database() -> Iterator[str]:
    admin = os.environ.get("DATABASE_URL", "")
    if not admin.startswith(("postgres://", "postgresql://")):
        fail_setup("DATABASE_URL must be a postgres:// URL (scripts/test.sh sets it); this test needs PostgreSQL")
    if shutil.which("psql") is None:
        fail_setup("psql is not on PATH: install the postgresql-client package")
    try:
        psql(admin, "select 1")
    except AssertionError as e:
        fail_setup(f"PostgreSQL at DATABASE_URL does not answer: {e}")
    name = f"steward_three_{int(time.time())}_{os.getpid()}"
    psql(admin, f"CREATE DATABASE {name}")
    try:
        yield with_database(admin, name)
    finally:
        psql(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ---------------------------------------------------------------------------------------------
# the servers
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, bin_: str, db: str, token: str, work: str, n: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(work, f"steward-{n}.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
        env |= {"STEWARD_BOOTSTRAP_ADMIN_TOKEN": token, "STEWARD_LOG": "warn", "STEWARD_ALLOW_TEST_CLOCK": "1"}
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [bin_, "serve", "--listen", f"127.0.0.1:{self.port}", "--database-url", db, "--public-url", self.base,
             "--data-dir", os.path.join(work, f"data-{n}"), "--test-clock", START],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=work)

    def tail(self, lines: int = 40) -> str:
        self.log.flush()
        with open(self.log_path) as f:
            return "".join(f.readlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def wait_ready(servers: list[Server], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    pending = list(servers)
    while pending:
        for s in list(pending):
            if s.proc.poll() is not None:
                raise AssertionError(f"{s.base} exited with {s.proc.returncode} before it was ready:\n{s.tail()}")
            try:
                if httpx.get(f"{s.base}/readyz", timeout=2).status_code == 200:
                    pending.remove(s)
            except httpx.HTTPError:
                pass
        if pending and time.monotonic() > deadline:
            raise AssertionError(f"not ready within {deadline_s} s: {[s.base for s in pending]}")
        if pending:
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# the test
# ---------------------------------------------------------------------------------------------

async def call(c: httpx.AsyncClient, method: str, url: str, body: Any = None, expect: int = 200) -> Any:
    r = await c.request(method, url, json=body)
    assert r.status_code == expect, f"{method} {url}: {r.status_code} {r.text[:500]}"
    return r.json() if r.content else None


async def setup_package(c: httpx.AsyncClient, base: str) -> tuple[str, str, str]:
    """A group, a catalog holding it, a package granting its Member role, a policy ending at END."""
    group = await call(c, "POST", f"{base}/v1.0/groups",
                       {"displayName": "Three servers", "mailNickname": "three-servers"}, 201)
    catalog = await call(c, "POST", f"{base}{EM}/catalogs", {"displayName": "Three servers"}, 201)
    await call(c, "POST", f"{base}{EM}/resourceRequests",
               {"requestType": "adminAdd", "catalog": {"id": catalog["id"]},
                "resource": {"originId": group["id"], "originSystem": "AadGroup"}}, 201)
    package = await call(c, "POST", f"{base}{EM}/accessPackages",
                         {"displayName": "Three servers", "catalog": {"id": catalog["id"]}}, 201)
    await call(c, "POST", f"{base}{EM}/accessPackages/{package['id']}/resourceRoleScopes",
               {"role": {"originId": f"Member_{group['id']}", "originSystem": "AadGroup"},
                "scope": {"originId": group["id"], "originSystem": "AadGroup"}}, 201)
    policy = await call(c, "POST", f"{base}{EM}/assignmentPolicies",
                        {"displayName": "Fixed end", "accessPackage": {"id": package["id"]},
                         "allowedTargetScope": "allMemberUsers",
                         "expiration": {"type": "afterDateTime", "endDateTime": END}}, 201)
    return group["id"], package["id"], policy["id"]


async def fan_out(servers: list[Server], token: str, jobs: list[tuple[str, str, Any, int]]) -> list[Any]:
    """Runs (method, path, body, expected status) calls, round-robin over the servers."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as c:
        sem = asyncio.Semaphore(CONCURRENCY)
        out: list[Any] = [None] * len(jobs)

        async def one(i: int) -> None:
            method, path, body, expect = jobs[i]
            async with sem:
                out[i] = await call(c, method, f"{servers[i % len(servers)].base}{path}", body, expect)

        await asyncio.gather(*(one(i) for i in range(len(jobs))))
        return out


def ops(c: httpx.Client, s: Server, method: str, path: str, body: Any = None) -> Any:
    r = c.request(method, f"{s.base}{path}", json=body)
    assert r.status_code == 200, f"{method} {s.base}{path}: {r.status_code} {r.text[:300]}"
    return r.json()


def test_three_servers_expire_5000_assignments_once():
    bin_ = os.environ.get("STEWARD_TEST_BIN", "")
    if not bin_ or not os.access(bin_, os.X_OK):
        fail_setup("STEWARD_TEST_BIN must name the steward binary (scripts/test.sh sets it)")
    token = secrets.token_urlsafe(32)
    timer = Timer()
    print(f"\nthree steward serve processes, one PostgreSQL database, {N} assignments", flush=True)
    with fresh_database() as db, tempfile.TemporaryDirectory(prefix="steward-three.") as work:
        servers: list[Server] = []
        try:
            # All three start at once on the empty database: migrations must serialise themselves.
            servers = [Server(bin_, db, token, work, n) for n in range(3)]
            wait_ready(servers)
            timer.lap("3 servers started (migrations on an empty database)")
            try:
                run_story(servers, token, db, timer)
            except BaseException:
                for s in servers:
                    print(f"---- {s.base} log (tail) ----\n{s.tail()}", flush=True)
                raise
            for s in servers:
                assert s.proc.poll() is None, f"{s.base} exited with {s.proc.returncode}:\n{s.tail()}"
        finally:
            for s in servers:
                s.stop()
    timer.total()


def run_story(servers: list[Server], token: str, db: str, timer: Timer) -> None:
    s0 = servers[0]

    async def setup() -> tuple[str, str, str]:
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
            return await setup_package(c, s0.base)

    group, package, policy = asyncio.run(setup())
    timer.lap("group, catalog, package and fixed-end policy created")

    users = asyncio.run(fan_out(servers, token, [
        ("POST", "/v1.0/users", {"displayName": f"Person {i:05}",
                                 "userPrincipalName": f"person{i:05}@three.example"}, 201)
        for i in range(N)]))
    timer.lap(f"{N} users created (across 3 servers)")

    requests = asyncio.run(fan_out(servers, token, [
        ("POST", f"{EM}/assignmentRequests",
         {"requestType": "adminAdd", "assignment": {"targetId": u["id"], "accessPackageId": package,
                                                     "assignmentPolicyId": policy}}, 201)
        for u in users]))
    assert all(r["requestType"] == "adminAdd" for r in requests)
    timer.lap(f"{N} adminAdd requests submitted (across 3 servers)")

    sql = lambda q: scalar(db, q)  # noqa: E731
    active = f"SELECT count(*) FROM assignments WHERE access_package_id = '{package}' AND active_key IS NOT NULL"
    pending_jobs = "SELECT count(*) FROM jobs WHERE kind <> 'sweep'"
    # People in exactly one of: the group's members, the targets of active assignments.
    same_people = (f"SELECT count(*) FROM ((SELECT user_id FROM group_members WHERE group_id = '{group}' "
                   f"EXCEPT SELECT target_id FROM assignments WHERE access_package_id = '{package}' AND active_key IS NOT NULL) "
                   f"UNION ALL (SELECT target_id FROM assignments WHERE access_package_id = '{package}' AND active_key IS NOT NULL "
                   f"EXCEPT SELECT user_id FROM group_members WHERE group_id = '{group}')) diff")
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        # Delivery: the background workers are already at it; drains on all three help and
        # return when nothing is due in their process. Repeat until the queue is empty.
        deadline = time.monotonic() + WAIT_DELIVERED_S
        while True:
            ran = asyncio.run(drain_all(servers, token))
            left = sql(pending_jobs)
            delivered = sql(f"SELECT count(*) FROM assignments WHERE access_package_id = '{package}' AND state = 'delivered'")
            if left == 0 and delivered == N:
                break
            assert time.monotonic() < deadline, f"not delivered in {WAIT_DELIVERED_S} s: {delivered}/{N}, {left} jobs, drains ran {ran}"
            time.sleep(0.1)
        assert sql(f"SELECT count(*) FROM group_members WHERE group_id = '{group}'") == N
        assert sql(same_people) == 0, "the group's members are not the holders of active assignments"
        assert sql(f"SELECT count(*) FROM assignment_requests WHERE access_package_id = '{package}' AND state = 'delivered'") == N
        timer.lap(f"{N} assignments delivered, {N} group members")

        # Past the end date on every server; from here only the background workers run.
        for s in servers:
            assert ops(c, s, "POST", "/ops/clock", {"set": AFTER_END})["now"] == AFTER_END
        timer.lap("3 clocks set past the end date")
        deadline = time.monotonic() + WAIT_EXPIRED_S
        polls = 0
        while True:
            still, left = sql(active), sql(pending_jobs)
            if still == 0 and left == 0:
                break
            polls += 1
            assert time.monotonic() < deadline, f"not expired in {WAIT_EXPIRED_S} s: {still} active, {left} jobs"
            assert all(s.proc.poll() is None for s in servers), "a server exited"
            time.sleep(0.1)
        # `steward jobs` agrees: only the singleton sweep is queued.
        out = subprocess.run([os.environ["STEWARD_TEST_BIN"], "jobs", "--database-url", db], capture_output=True,
                             text=True, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")})
        assert out.returncode == 0 and out.stdout.strip() == "1 job queued", (out.returncode, out.stdout, out.stderr)
        timer.lap(f"{N} expired and revoked by the 3 workers ({polls} polls)")

    # Every assignment expired, once.
    assert sql(f"SELECT count(*) FROM assignments WHERE access_package_id = '{package}'") == N
    assert sql(f"SELECT count(*) FROM assignments WHERE access_package_id = '{package}' AND state <> 'expired'") == 0
    assert sql(f"SELECT count(*) FROM assignments WHERE access_package_id = '{package}' AND status <> 'Expired'") == 0
    # Assignments of the package without exactly one event of an activity ({0}) about them ({1}).
    per_assignment = ("SELECT count(*) FROM (SELECT a.id, count(e.id) AS n FROM assignments a "
                      "LEFT JOIN audit_events e ON e.{1} = a.id AND e.activity = '{0}' "
                      f"WHERE a.access_package_id = '{package}' GROUP BY a.id) per WHERE per.n <> 1")
    assert sql(per_assignment.format("Expire", "correlation_id")) == 0, "an assignment without exactly one Expire event"
    assert sql("SELECT count(*) FROM audit_events WHERE activity = 'Expire'") == N
    # Every revocation ran once: one done revoke delivery and one RemoveResource event each,
    # and the grant before it also once.
    assert sql("SELECT count(*) FROM deliveries WHERE action = 'revoke' AND state = 'done'") == N
    assert sql("SELECT count(*) FROM deliveries WHERE state <> 'done'") == 0
    assert sql(per_assignment.format("RemoveResource", "target_id")) == 0, "a revocation that did not run exactly once"
    assert sql(per_assignment.format("FulfillResource", "target_id")) == 0, "a grant that did not run exactly once"
    assert sql("SELECT count(*) FROM audit_events WHERE result <> 'success'") == 0
    # The group's members are exactly the holders of active assignments: nobody.
    assert sql(same_people) == 0, "the group's members are not the holders of active assignments"
    assert sql(f"SELECT count(*) FROM group_members WHERE group_id = '{group}'") == 0
    attempts = psql(db, "SELECT max(attempts) FROM deliveries WHERE action = 'revoke'")
    timer.lap(f"verified with SQL (max attempts of a revocation job: {attempts})")


async def drain_all(servers: list[Server], token: str) -> list[int]:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        rs = await asyncio.gather(*(c.post(f"{s.base}/ops/jobs/drain") for s in servers))
    for s, r in zip(servers, rs):
        assert r.status_code == 200, f"drain on {s.base}: {r.status_code} {r.text[:300]}"
    return [r.json()["ran"] for r in rs]
