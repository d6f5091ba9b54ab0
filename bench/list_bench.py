#!/usr/bin/env python3
"""Steward list benchmark: filtered, paged lists over many access packages, timed from an HTTP client.

Starts `steward serve` on a free loopback port against the given database, loads CATALOGS catalogs
holding PACKAGES access packages through the Graph API, reads the server's resident memory, then
pages through filtered lists by following @odata.nextLink, timing every page (request sent to
body fully read) on one keep-alive connection. Prints a Markdown table of p50/p99/max per page.

Usage: bench/list_bench.py --binary target/release/steward --database-url sqlite:///tmp/b.db
"""
import argparse
import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

EM = "/v1.0/identityGovernance/entitlementManagement"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

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


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load(port, token, catalogs, packages, threads):
    c = Client(port, token)
    cat_ids = []
    for i in range(catalogs):
        cat = c.call("POST", f"{EM}/catalogs", {"displayName": f"Catalog {i:04}", "description": f"Benchmark catalog {i}"})
        cat_ids.append(cat["id"])
    per = packages // catalogs

    def worker(start, stop):
        w = Client(port, token)
        for n in range(start, stop):
            ci = n % catalogs
            w.call("POST", f"{EM}/accessPackages", {
                "displayName": f"Package {n:05} of catalog {ci:04}",
                "description": "Benchmark package" if n % 3 else None,
                "isHidden": n % 10 == 0,
                "catalog": {"id": cat_ids[ci]},
            })

    chunk = (per * catalogs + threads - 1) // threads
    ts = [threading.Thread(target=worker, args=(t * chunk, min((t + 1) * chunk, per * catalogs))) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return cat_ids


def page_through(port, token, path, max_pages):
    c = Client(port, token)
    times, rows, pages = [], 0, 0
    next_path = path
    while next_path and pages < max_pages:
        t0 = time.perf_counter()
        body = c.call("GET", next_path)
        times.append((time.perf_counter() - t0) * 1000)
        rows += len(body["value"])
        pages += 1
        link = body.get("@odata.nextLink")
        if link:
            u = urllib.parse.urlsplit(link)
            next_path = f"{u.path}?{u.query}"
        else:
            next_path = None
    return times, rows


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
    ap.add_argument("--threads", type=int, default=2, help="loader threads")
    ap.add_argument("--rounds", type=int, default=3, help="times each workload is repeated")
    args = ap.parse_args()

    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, STEWARD_BOOTSTRAP_ADMIN_TOKEN=token, STEWARD_LOG="warn")
    log = tempfile.NamedTemporaryFile(prefix="steward-bench-", suffix=".log", delete=False)
    data_dir = tempfile.mkdtemp(prefix="steward-bench-")
    srv = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}", "--database-url", args.database_url,
                            "--data-dir", data_dir], env=env, stdout=log, stderr=log)
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

        t0 = time.perf_counter()
        cat_ids = load(port, token, args.catalogs, args.packages, args.threads)
        load_s = time.perf_counter() - t0
        rss_loaded = rss_mib(srv.pid)

        workloads = [
            ("isHidden eq false, $orderby=displayName, $top=100, all pages",
             f"{EM}/accessPackages?$filter=isHidden%20eq%20false&$orderby=displayName&$top=100"),
            ("startswith(displayName,'Package 1') + $count=true, $top=100, all pages",
             f"{EM}/accessPackages?$filter=startswith(displayName,%27Package%201%27)&$count=true&$top=100"),
            ("contains(tolower(description),'bench') and isHidden eq false, $orderby=createdDateTime desc, $top=200",
             f"{EM}/accessPackages?$filter=contains(tolower(description),%27bench%27)%20and%20isHidden%20eq%20false&$orderby=createdDateTime%20desc&$top=200"),
        ]
        per_catalog = [f"{EM}/accessPackages?$filter=catalog/id%20eq%20%27{c}%27&$expand=catalog" for c in cat_ids[:100]]
        results = []
        for name, path in workloads:
            all_times, rows = [], 0
            for _ in range(args.rounds):
                times, rows = page_through(port, token, path, 10_000)
                all_times += times
            results.append((name, len(all_times), rows, pct(all_times, 50), pct(all_times, 99), max(all_times)))
        all_times, rows = [], 0
        for _ in range(args.rounds):
            for path in per_catalog:
                times, rows = page_through(port, token, path, 10_000)
                all_times += times
        results.append((f"catalog/id eq '<catalog>' + $expand=catalog, {len(per_catalog)} catalogs", len(all_times), rows,
                        pct(all_times, 50), pct(all_times, 99), max(all_times)))
        rss_after = rss_mib(srv.pid)

        backend = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
        print(f"\n### {backend}: {args.packages} access packages in {args.catalogs} catalogs\n")
        print(f"- load through the API ({args.threads} client threads): {load_s:.1f} s "
              f"({args.packages / load_s:.0f} packages/s)")
        print(f"- server resident memory (VmRSS) after loading: {rss_loaded:.1f} MiB; after the list workloads: {rss_after:.1f} MiB\n")
        print("| workload | pages timed | rows per pass (last) | p50 ms | p99 ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, n, rows, p50, p99, mx in results:
            print(f"| {name} | {n} | {rows} | {p50:.2f} | {p99:.2f} | {mx:.2f} |")
    finally:
        srv.terminate()
        try:
            srv.wait(10)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
