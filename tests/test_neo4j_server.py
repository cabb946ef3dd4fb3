"""Tests of the Neo4j test-server harness against a real Neo4j 5.26 engine.

They need Java 17+ and Maven. Without them the tests are skipped, except when
``CI=true``, where they fail so that CI cannot pass without running them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import neo4j_server
from tests.support.neo4j_server import Neo4jServer, Neo4jServerError, java_and_maven_available

neo4j = pytest.importorskip("neo4j", reason="the official neo4j driver is not installed")

pytestmark = pytest.mark.neo4j

REPO_ROOT = Path(__file__).resolve().parent.parent

# TCP states in /proc/net/tcp and /proc/net/tcp6 (include/net/tcp_states.h).
TCP_LISTEN = "0A"


@pytest.fixture(scope="module", autouse=True)
def require_java_and_maven() -> None:
    """Skip the module without Java or Maven, but fail instead when CI=true."""
    available, reason = java_and_maven_available()
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires the Neo4j harness tests to run, but {reason}")
    pytest.skip(f"Neo4j harness tests need Java and Maven: {reason}")


@pytest.fixture(scope="module")
def shared_server() -> Iterator[Neo4jServer]:
    """A server for tests that only read from it."""
    with Neo4jServer() as server:
        yield server


def count_markers(server: Neo4jServer, marker: str) -> int:
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (n:HarnessMarker {marker: $marker}) RETURN count(n) AS count", marker=marker
        )
    return int(records[0]["count"])


def write_marker(server: Neo4jServer, marker: str) -> None:
    with neo4j.GraphDatabase.driver(server.uri, auth=server.auth) as driver:
        driver.execute_query("CREATE (:HarnessMarker {marker: $marker})", marker=marker)


def tcp_accepts(host: str, port: int, family: socket.AddressFamily = socket.AF_INET) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect((host, port))
        except OSError:
            return False
    return True


def decode_proc_net_address(address: str) -> tuple[str, int]:
    """Decode ``HEX_IP:HEX_PORT`` from /proc/net/tcp{,6} into an IP text and a port."""
    ip_hex, port_hex = address.split(":")
    raw = bytes.fromhex(ip_hex)
    # The kernel prints each 32-bit word of the address in host byte order (little endian on x86 and arm64).
    words = [raw[index : index + 4][::-1] for index in range(0, len(raw), 4)]
    packed = b"".join(words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed), int(port_hex, 16)


def process_is_alive(pid: int) -> bool:
    """Return whether a process exists and is not a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    # The state follows the command name, which is in parentheses and may contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state != "Z"


def listening_addresses(pid: int) -> list[tuple[str, int]]:
    """Return the listening TCP sockets of a process, read from /proc."""
    socket_inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            socket_inodes.add(target[len("socket:[") : -1])

    addresses = []
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local_address, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and inode in socket_inodes:
                addresses.append(decode_proc_net_address(local_address))
    return addresses


def test_restart_keeps_data_and_port(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    with Neo4jServer(tmp_path / "home") as server:
        uri_before = server.uri
        write_marker(server, marker)

        server.stop()
        assert not server.is_running
        assert not tcp_accepts(server.host, server.port)

        server.start()
        assert server.uri == uri_before
        assert count_markers(server, marker) == 1

        server.restart()
        assert server.uri == uri_before
        assert count_markers(server, marker) == 1


def test_kill_then_start_recovers_committed_data(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    with Neo4jServer(tmp_path / "home") as server:
        write_marker(server, marker)

        server.kill()
        assert not server.is_running

        server.start()
        assert count_markers(server, marker) == 1


def test_new_home_starts_empty(tmp_path: Path) -> None:
    with Neo4jServer(tmp_path / "home") as server:
        assert count_markers(server, "any") == 0


def test_listens_only_on_loopback(shared_server: Neo4jServer) -> None:
    pid = shared_server.pid
    assert pid is not None

    addresses = listening_addresses(pid)

    assert shared_server.port in {port for _, port in addresses}, addresses
    for ip, port in addresses:
        assert ip in {"127.0.0.1", "::ffff:127.0.0.1"}, f"JVM listens on {ip}:{port}"
    assert tcp_accepts("127.0.0.1", shared_server.port)
    # Other loopback addresses reach a socket bound to 0.0.0.0 or ::, but not one bound to 127.0.0.1.
    assert not tcp_accepts("127.0.0.2", shared_server.port)
    assert not tcp_accepts("::1", shared_server.port, socket.AF_INET6)


def test_properties_describe_server(shared_server: Neo4jServer) -> None:
    assert shared_server.uri == f"bolt://127.0.0.1:{shared_server.port}"
    assert shared_server.user == "neo4j"
    assert shared_server.password is not None
    assert shared_server.auth == ("neo4j", shared_server.password)
    assert shared_server.last_startup_seconds is not None
    assert "BOLT READY 127.0.0.1:" in shared_server.read_log()


def test_server_runs_neo4j_5_26_community(shared_server: Neo4jServer) -> None:
    with neo4j.GraphDatabase.driver(shared_server.uri, auth=shared_server.auth) as driver:
        records, _, _ = driver.execute_query("CALL dbms.components() YIELD versions, edition RETURN versions, edition")

    assert records[0]["versions"][0].startswith("5.26.")
    assert records[0]["edition"] == "community"


def test_wrong_password_is_rejected(shared_server: Neo4jServer) -> None:
    with (
        neo4j.GraphDatabase.driver(shared_server.uri, auth=("neo4j", "wrong-password")) as driver,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        driver.execute_query("RETURN 1")


def test_start_twice_raises(shared_server: Neo4jServer) -> None:
    with pytest.raises(Neo4jServerError, match="already running"):
        shared_server.start()


def test_auth_disabled_accepts_no_credentials(tmp_path: Path) -> None:
    with Neo4jServer(tmp_path / "home", auth=False) as server:
        assert server.password is None
        with neo4j.GraphDatabase.driver(server.uri, auth=None) as driver:
            records, _, _ = driver.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1


def test_invalid_setting_fails_with_log_tail(tmp_path: Path) -> None:
    server = Neo4jServer(tmp_path / "home", settings={"server.no_such_setting": "1"}, startup_timeout=120)

    with pytest.raises(Neo4jServerError) as failure:
        server.start()

    message = str(failure.value)
    assert "exited with status 1" in message
    assert "server.no_such_setting" in message
    assert not server.is_running


def test_taken_port_fails_clearly(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = Neo4jServer(tmp_path / "home", port=port, startup_timeout=120)

        with pytest.raises(Neo4jServerError) as failure:
            server.start()

    assert f"port 127.0.0.1:{port} is already in use" in str(failure.value)
    assert not server.is_running


def test_close_deletes_temporary_home() -> None:
    server = Neo4jServer()
    server.start()
    home = server.home
    assert (home / "data").is_dir()

    server.close()

    assert not server.is_running
    assert not home.exists()


def test_jvm_stops_when_parent_process_dies(tmp_path: Path) -> None:
    # A child Python starts the server and is then killed without any cleanup.
    script = (
        "import sys, time\n"
        "from tests.support.neo4j_server import Neo4jServer\n"
        f"server = Neo4jServer({str(tmp_path / 'home')!r}).start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=environment, cwd=REPO_ROOT
    )
    jvm_pid: int | None = None
    try:
        assert parent.stdout is not None
        jvm_pid = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(30)

        deadline = time.monotonic() + 60
        while process_is_alive(jvm_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not process_is_alive(jvm_pid), f"JVM {jvm_pid} still runs after its parent died"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if jvm_pid is not None and process_is_alive(jvm_pid):
            os.kill(jvm_pid, signal.SIGKILL)


def test_build_launcher_skips_up_to_date_build(monkeypatch: pytest.MonkeyPatch) -> None:
    jar = neo4j_server.build_launcher()

    def fail_run(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"Maven ran although the launcher is up to date: {args}")

    monkeypatch.setattr(neo4j_server.subprocess, "run", fail_run)

    assert neo4j_server.build_launcher() == jar
    assert jar.is_file()
