"""The ``faultgraph`` command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[1]
CALL_CENTER = ROOT / "examples" / "call-center" / "cmdb.yaml"

SMALL_BUNDLE = """
cis:
  - {id: db, type: database}
  - {id: app, type: service}
  - {id: web, type: service}
  - {id: shop, type: business_service}
relationships:
  - {source: app, target: db, type: DEPENDS_ON}
  - {source: web, target: app, type: DEPENDS_ON, strength: soft}
  - {source: app, target: shop, type: PART_OF}
"""


@pytest.fixture
def bundle_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_BUNDLE, encoding="utf-8")
    return path


def test_cli_import_prints_summary(tmp_path: Path, bundle_file: Path) -> None:
    db = tmp_path / "fg.db"

    first = run_cli("import", "bundle", str(bundle_file), db=db)
    second = run_cli("import", "bundle", str(bundle_file), db=db)

    assert "CIs: 4 read, 4 created, 0 updated, 0 unchanged" in first.stdout
    assert "relationships: 3 read, 3 created" in first.stdout
    assert "CIs: 4 read, 0 created, 0 updated, 4 unchanged" in second.stdout


def test_cli_import_rejects_bad_bundle(tmp_path: Path, bundle_file: Path) -> None:
    db = tmp_path / "fg.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text("relationships:\n  - {source: app, target: nowhere, type: DEPENDS_ON}\n", encoding="utf-8")

    result = run_cli("import", "bundle", str(bundle_file), str(bad), db=db, check=False)

    assert result.returncode == 1
    assert str(bad) in result.stderr
    assert "relationships#0" in result.stderr
    assert "'target'" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    listing = run_cli("blast-radius", "db", db=db, check=False)
    assert "not found" in listing.stderr


def test_cli_blast_radius_missing_store(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "fg.db"

    result = run_cli("blast-radius", "sbc-1", db=db, check=False)

    assert result.returncode == 1
    assert f"no embedded store at {db}" in result.stderr
    assert not db.parent.exists()


def test_cli_import_keep_going_imports_rest(tmp_path: Path, bundle_file: Path) -> None:
    db = tmp_path / "fg.db"
    broken = tmp_path / "broken.yaml"
    broken.write_text("cis: [ {id: x", encoding="utf-8")

    result = run_cli("import", "--keep-going", "bundle", str(bundle_file), str(broken), db=db, check=False)

    assert result.returncode == 3
    assert "CIs: 4 read, 4 created" in result.stdout
    assert "rejected 1 record(s), 1 problem(s)" in result.stderr
    assert "invalid YAML" in result.stderr


def test_cli_blast_radius_table_and_json(tmp_path: Path, bundle_file: Path) -> None:
    db = tmp_path / "fg.db"
    run_cli("import", "bundle", str(bundle_file), db=db)

    table = run_cli("blast-radius", "db", db=db).stdout
    document = json.loads(run_cli("blast-radius", "db", "--json", db=db).stdout)

    assert "db -> app -> web" in table
    assert "3 impacted: 2 DOWN, 1 DEGRADED, 0 AT_RISK" in table
    by_id = {row["id"]: row for row in document["impacted"]}
    assert by_id["web"]["impact"] == "DEGRADED"
    assert by_id["app"]["business_services"] == ["shop"]
    assert by_id["shop"]["path"] == ["db", "app", "shop"]
    assert document["summary"]["total"] == 3


def test_cli_blast_radius_unknown_ci(tmp_path: Path, bundle_file: Path) -> None:
    db = tmp_path / "fg.db"
    run_cli("import", "bundle", str(bundle_file), db=db)

    result = run_cli("blast-radius", "ghost", db=db, check=False)

    assert result.returncode != 0
    assert "ghost" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unknown_format_lists_formats(tmp_path: Path, bundle_file: Path) -> None:
    result = run_cli("import", "csv", str(bundle_file), db=tmp_path / "fg.db", check=False)

    assert result.returncode == 2
    assert "bundle" in result.stderr
    assert "kubernetes" in result.stderr


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_serve_examples_answers_blast_radius(tmp_path: Path) -> None:
    pytest.importorskip("importers.kubernetes")
    if not CALL_CENTER.exists():
        pytest.skip("examples/call-center/cmdb.yaml is not there yet")
    port = _free_port()
    environment = {**os.environ, "FAULTGRAPH_DB": str(tmp_path / "fg.db"), "FAULTGRAPH_STORE": "embedded"}
    server = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--examples", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail(f"faultgraph serve exited early:\n{server.communicate()[0]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        else:
            pytest.fail("faultgraph serve did not become ready within 60 s")

        query = """
        { blastRadius(ciIds: ["k8s/default/deployment/productcatalogservice"]) {
            impacted { impact ci { id } path { id } }
        } }
        """
        body = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30).json()
        impacted = {item["ci"]["id"]: item for item in body["data"]["blastRadius"]["impacted"]}
        for workload in ("frontend", "checkoutservice", "recommendationservice", "loadgenerator"):
            item = impacted[f"k8s/default/deployment/{workload}"]
            assert item["path"][0]["id"] == "k8s/default/deployment/productcatalogservice"
            assert item["path"][-1]["id"] == f"k8s/default/deployment/{workload}"

        call_center = httpx.post(f"{url}/graphql", json={"query": "{ cis(filter: {type: \"transaction\"}) { totalCount } }"}, timeout=30).json()
        assert call_center["data"]["cis"]["totalCount"] > 0
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert "Traceback" not in output
