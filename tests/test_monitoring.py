"""The Grafana dashboard and the Prometheus alert rules in ops/, checked against what ferrovec
really exports: promtool checks the rules and runs their unit tests, then a real Prometheus
(Debian's) scrapes a real RAG server on 127.0.0.1 while it serves, and every dashboard query
must return series and every metric the rules name must exist."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.rag.test_app import DOCS, _free_port, _serve, _wait_ready

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "ops" / "grafana" / "ferrovec-dashboard.json"
RULES = REPO / "ops" / "prometheus" / "ferrovec-alerts.yml"
RULE_TESTS = REPO / "ops" / "prometheus" / "ferrovec-alerts.test.yml"
METRIC = re.compile(r"\bferrovec_[a-z_]+")


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/setup.sh installs Debian's prometheus package"
    return path


def dashboard_queries() -> list[str]:
    """Every panel's PromQL, with Grafana's variables as a dashboard would fill them."""
    d = json.loads(DASHBOARD.read_text())
    out = []
    for p in d["panels"]:
        for t in p["targets"]:
            out.append(t["expr"].replace("$__rate_interval", "30s").replace("$collection", ".*"))
    return out


def test_alert_rules_are_valid_and_their_unit_tests_pass() -> None:
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "8 rules found" in check.stdout
    tests = subprocess.run(
        [tool("promtool"), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=RULE_TESTS.parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_every_series_the_dashboard_and_rules_name_exists_in_a_live_scrape(
    tmp_path: Path,
) -> None:
    port, prom_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    prom = f"http://127.0.0.1:{prom_port}"
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: ferrovec\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    )
    log_path = tmp_path / "server.log"
    with log_path.open("ab") as log, (tmp_path / "prometheus.log").open("ab") as prom_log:
        server = _serve(tmp_path, port, log, api_key=None)
        prometheus = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=prom_log,
        )
        try:
            _wait_ready(base, server, log_path)
            r = httpx.post(base + "/ingest?wait=true", json={"texts": DOCS}, timeout=60)
            assert r.status_code == 200, r.text

            def query(expr: str) -> list[dict[str, object]]:
                r = httpx.get(prom + "/api/v1/query", params={"query": expr}, timeout=10)
                body = r.json()
                assert body["status"] == "success", (expr, body)
                return body["data"]["result"]

            # Traffic while Prometheus scrapes, until it holds enough samples for rates.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                httpx.post(base + "/query", json={"query": "moon craters"}, timeout=30)
                try:
                    up = query('count_over_time(up{job="ferrovec"}[1m])')
                except httpx.TransportError:
                    up = []
                if up and float(up[0]["value"][1]) >= 6:  # type: ignore[index]
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("Prometheus did not scrape the server")
            assert float(query('up{job="ferrovec"}')[0]["value"][1]) == 1  # type: ignore[index]

            empty = [e for e in dashboard_queries() if not query(e)]
            assert not empty, f"dashboard queries with no series: {empty}"
            named = set(METRIC.findall(RULES.read_text())) | {
                m for e in dashboard_queries() for m in METRIC.findall(e)
            }
            assert len(named) >= 15
            missing = [m for m in sorted(named) if not query(f'{{__name__="{m}"}}')]
            assert not missing, f"named but not exported: {missing}"
        finally:
            for p in (prometheus, server):
                p.terminate()
                p.wait(timeout=30)
