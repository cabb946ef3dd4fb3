"""Start a real Neo4j 5.26 Community engine on 127.0.0.1 for tests.

The engine runs in a child JVM through the launcher in ``tests/neo4j_launcher``
(embedded Neo4j with the Bolt connector enabled). Maven builds the launcher from
Maven Central artifacts on first use and caches them in the default local
repository (``~/.m2``).

Typical use in a test::

    with Neo4jServer() as server:
        driver = neo4j.GraphDatabase.driver(server.uri, auth=server.auth)
        ...
        server.stop()   # or server.kill() to simulate a crash
        server.start()  # same port, same store

``python -m tests.support.neo4j_server`` starts a server for manual use and
prints its URI and credentials; Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

logger = logging.getLogger(__name__)

LAUNCHER_DIR = Path(__file__).resolve().parent.parent / "neo4j_launcher"
"""Maven project of the Java launcher."""

LAUNCHER_JAR = LAUNCHER_DIR / "target" / "neo4j-launcher.jar"
"""Runnable jar; its manifest class path points at ``target/lib/*.jar``."""

_BUILD_STAMP = LAUNCHER_DIR / "target" / "faultgraph-build.stamp"
_BUILD_LOCK = LAUNCHER_DIR / "target" / "faultgraph-build.lock"

PASSWORD_ENV = "FAULTGRAPH_NEO4J_PASSWORD"
"""Environment variable from which the launcher reads the password of ``neo4j``."""

HOST = "127.0.0.1"
USER = "neo4j"

DEFAULT_JVM_OPTIONS: tuple[str, ...] = ("-Xms128m", "-Xmx512m", "-XX:TieredStopAtLevel=1")
"""JVM options for test servers.

Compiling with C1 only (``TieredStopAtLevel=1``) roughly halved the time to
Bolt ready and cut idle RSS by about 60 MiB in one measurement on a loaded
2-core machine, at the cost of slower long-running queries. ``main()`` leaves
the full JIT on, for benchmarks.
"""
DEFAULT_PAGECACHE_SIZE = "64m"
DEFAULT_STARTUP_TIMEOUT = 180.0
DEFAULT_STOP_TIMEOUT = 60.0
BUILD_TIMEOUT = 1800.0
"""Seconds allowed for ``mvn package``.

A build with an empty local repository downloads about 170 MB (Neo4j 5.26.30
and the Maven plugins) and took 42 s on a loaded 2-core machine.
"""

MIN_JAVA_VERSION = 17
"""Neo4j 5.26 jars are compiled for Java 17 (class file version 61)."""

# Exit status of the launcher when the port is taken; equal to EXIT_PORT_IN_USE in Neo4jLauncher.java.
_EXIT_PORT_IN_USE = 3

_READY_PATTERN = re.compile(r"^BOLT READY 127\.0\.0\.1:(\d+)$", re.MULTILINE)
_PORT_ATTEMPTS = 5
_POLL_INTERVAL = 0.1
_LOG_TAIL_LINES = 40


class Neo4jServerError(RuntimeError):
    """Failure to build, start or stop the Neo4j test server."""


def java_and_maven_available() -> tuple[bool, str]:
    """Check that ``java`` (17 or newer) and ``mvn`` are on the PATH.

    Returns:
        ``(True, description)`` when both are usable, otherwise ``(False, reason)``
        with a reason that fits a pytest skip message.
    """
    java = shutil.which("java")
    if java is None:
        return False, "java not found on PATH; install a JDK 17 or newer"
    mvn = shutil.which("mvn")
    if mvn is None:
        return False, "mvn not found on PATH; install Maven 3.8 or newer"

    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, f"running '{java} -version' failed: {error}"
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr)
    if result.returncode != 0 or match is None:
        return False, f"'{java} -version' returned no version: {result.stderr.strip()!r}"
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        major = int(match.group(2))
    if major < MIN_JAVA_VERSION:
        return False, f"{java} is Java {major}; Neo4j 5.26 needs Java {MIN_JAVA_VERSION} or newer"

    return True, f"Java {major} at {java}, Maven at {mvn}"


def _launcher_inputs() -> list[Path]:
    inputs = [LAUNCHER_DIR / "pom.xml"]
    inputs.extend(path for path in (LAUNCHER_DIR / "src").rglob("*") if path.is_file())
    return inputs


def _launcher_is_up_to_date() -> bool:
    if not (_BUILD_STAMP.exists() and LAUNCHER_JAR.exists() and (LAUNCHER_DIR / "target" / "lib").is_dir()):
        return False
    built_at = _BUILD_STAMP.stat().st_mtime
    return all(path.stat().st_mtime <= built_at for path in _launcher_inputs())


def build_launcher(*, force: bool = False) -> Path:
    """Build the launcher jar with Maven unless the last build is newer than its sources.

    A file lock serializes concurrent builds, for example from parallel pytest
    workers. A stamp file, touched after each successful build, marks the build
    as up to date. The jar alone would not do, because Maven writes it before
    it copies the dependencies to ``target/lib``.

    Args:
        force: Run Maven even when the build looks up to date.

    Returns:
        Path of the runnable jar.

    Raises:
        Neo4jServerError: If Maven is missing, fails or times out.
    """
    if not force and _launcher_is_up_to_date():
        return LAUNCHER_JAR

    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jServerError("mvn not found on PATH; install Maven to build the Neo4j launcher")

    _BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with _BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have finished the build while this one waited for the lock.
        if not force and _launcher_is_up_to_date():
            return LAUNCHER_JAR

        command = [mvn, "-q", "-B", "package"]
        logger.info("building the Neo4j launcher: %s in %s", " ".join(command), LAUNCHER_DIR)
        started = time.monotonic()
        try:
            result = subprocess.run(
                command,
                cwd=LAUNCHER_DIR,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise Neo4jServerError(
                f"building the Neo4j launcher timed out after {BUILD_TIMEOUT:.0f} s: {' '.join(command)}"
            ) from error
        if result.returncode != 0 or not LAUNCHER_JAR.exists():
            output = _tail(result.stdout + result.stderr, _LOG_TAIL_LINES)
            raise Neo4jServerError(
                f"building the Neo4j launcher failed (exit status {result.returncode}) "
                f"in {LAUNCHER_DIR}:\n{output}"
            )
        _BUILD_STAMP.touch()
        logger.info("built the Neo4j launcher in %.1f s", time.monotonic() - started)
    return LAUNCHER_JAR


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class _Resources:
    """JVM process and temporary home that must not outlive their ``Neo4jServer``.

    A fixture that calls ``stop()`` but never ``close()`` would otherwise leave
    the temporary home behind, and one that calls neither would leave the JVM
    running until this Python process exits.
    """

    process: subprocess.Popen[bytes] | None = None
    temp_home: Path | None = None

    def release(self) -> None:
        """Stop the JVM if it still runs and delete the temporary home."""
        process = self.process
        if process is not None and process.poll() is None:
            logger.warning("stopping abandoned Neo4j server (pid %d)", process.pid)
            process.terminate()
            try:
                process.wait(DEFAULT_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        if self.temp_home is not None:
            shutil.rmtree(self.temp_home, ignore_errors=True)
            self.temp_home = None


class Neo4jServer:
    """A Neo4j 5.26 Community engine in a child JVM, with Bolt on 127.0.0.1.

    The server keeps its port and Neo4j home across ``stop()`` and ``start()``,
    so a restart opens the same store on the same URI. Authentication is on by
    default, with the user ``neo4j`` and a random password unless one is given.

    Args:
        home: Neo4j home: the store goes to ``home/data`` and Neo4j's logs to
            ``home/logs``. Defaults to a new temporary directory, which
            ``close()`` deletes, as does garbage collection or interpreter
            exit if ``close()`` was never called.
        port: Bolt port on 127.0.0.1. Defaults to a free port chosen at the
            first start.
        password: Password of the user ``neo4j``, at least 8 characters
            (Neo4j's default minimum). Defaults to a random one.
        auth: Whether the engine requires authentication.
        pagecache_size: Neo4j page cache size, such as ``"64m"``.
        jvm_options: Options for the ``java`` command, such as heap limits.
        settings: Further Neo4j settings by name, such as
            ``{"db.transaction.timeout": "10s"}``.
        startup_timeout: Seconds that ``start()`` waits until Bolt runs a test query.
        stop_timeout: Seconds that ``stop()`` waits after SIGTERM before it
            sends SIGKILL.
        java: The ``java`` executable.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        password: str | None = None,
        auth: bool = True,
        pagecache_size: str = DEFAULT_PAGECACHE_SIZE,
        jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        java: str = "java",
    ) -> None:
        if password is not None and not auth:
            raise ValueError("password is set but auth is False; pass one or the other")
        self._owns_home = home is None
        self._home = Path(home).resolve() if home is not None else None
        self._port = port
        self._port_is_fixed = port is not None
        self._password = password if password is not None else secrets.token_urlsafe(18)
        self._auth = auth
        self._pagecache_size = pagecache_size
        self._jvm_options = tuple(jvm_options)
        self._settings = dict(settings or {})
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._java = java
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, self._resources.release)
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0
        self._has_started = False
        self.last_startup_seconds: float | None = None
        """Seconds from the last ``start()`` call until Bolt ran a test query."""

    @property
    def _process(self) -> subprocess.Popen[bytes] | None:
        return self._resources.process

    @_process.setter
    def _process(self, process: subprocess.Popen[bytes] | None) -> None:
        self._resources.process = process

    @property
    def host(self) -> str:
        """Address that Bolt listens on."""
        return HOST

    @property
    def port(self) -> int:
        """Bolt port; chosen at the first start unless given to the constructor."""
        if self._port is None:
            raise Neo4jServerError("the server has no port yet; call start() first")
        return self._port

    @property
    def uri(self) -> str:
        """Bolt URI, such as ``bolt://127.0.0.1:7687``."""
        return f"bolt://{HOST}:{self.port}"

    @property
    def user(self) -> str:
        """Name of the database user."""
        return USER

    @property
    def password(self) -> str | None:
        """Password of the user ``neo4j``, or None when authentication is off."""
        return self._password if self._auth else None

    @property
    def auth(self) -> tuple[str, str] | None:
        """``(user, password)`` for ``neo4j.GraphDatabase.driver``, or None when authentication is off."""
        return (USER, self._password) if self._auth else None

    @property
    def home(self) -> Path:
        """Neo4j home directory of this server."""
        if self._home is None:
            raise Neo4jServerError("the server has no home directory yet; call start() first")
        return self._home

    @property
    def log_path(self) -> Path:
        """Output of the launcher JVM (standard output and error) across all starts."""
        return self.home / "launcher.log"

    @property
    def debug_log_path(self) -> Path:
        """Neo4j's own ``debug.log``."""
        return self.home / "logs" / "debug.log"

    @property
    def pid(self) -> int | None:
        """Process id of the running JVM, or None."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        """Whether the JVM process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the engine and wait until Bolt runs a test query.

        The first start picks a free port unless one was given, and retries
        with another port if that one is taken before the JVM binds it. Later
        starts reuse the port and the store.

        Returns:
            This server, for chaining.

        Raises:
            Neo4jServerError: If the server is already running, the JVM exits
                early, or Bolt runs no test query within ``startup_timeout``.
        """
        if self.is_running:
            raise Neo4jServerError(f"the Neo4j server on {self.uri} is already running")
        jar = build_launcher()
        if self._home is None:
            self._home = Path(tempfile.mkdtemp(prefix="faultgraph-neo4j-"))
            self._resources.temp_home = self._home
        self._home.mkdir(parents=True, exist_ok=True)

        # After the first successful start the port stays, so that the URI survives restarts.
        port_is_fixed = self._port_is_fixed or self._has_started
        attempts = 1 if port_is_fixed else _PORT_ATTEMPTS
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            if not port_is_fixed:
                self._port = find_free_port()
            exit_status = self._launch_and_wait(jar, deadline=started + self._startup_timeout)
            if exit_status is None:
                self._has_started = True
                self.last_startup_seconds = time.monotonic() - started
                logger.info(
                    "Neo4j server ready on %s after %.1f s (pid %s, home %s)",
                    self.uri,
                    self.last_startup_seconds,
                    self.pid,
                    self._home,
                )
                return self
            if exit_status == _EXIT_PORT_IN_USE and attempt < attempts:
                logger.warning(
                    "port %s was taken before Neo4j bound it; retrying with another port (attempt %d of %d)",
                    self._port,
                    attempt + 1,
                    attempts,
                )
                continue
            raise Neo4jServerError(self._failure_message(f"the launcher exited with status {exit_status}"))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def stop(self, timeout: float | None = None) -> None:
        """Stop the engine with SIGTERM, and with SIGKILL if it is still alive after ``timeout``.

        SIGTERM makes the launcher shut Neo4j down cleanly (with a checkpoint).
        Calling ``stop()`` on a stopped server does nothing.

        Args:
            timeout: Seconds to wait after SIGTERM; defaults to ``stop_timeout``.
        """
        process = self._process
        if process is None:
            return
        wait_seconds = self._stop_timeout if timeout is None else timeout
        if process.poll() is None:
            logger.info("stopping Neo4j server on %s (pid %d)", self.uri, process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(wait_seconds)
            except subprocess.TimeoutExpired:
                logger.error(
                    "Neo4j server (pid %d) did not stop %.0f s after SIGTERM; sending SIGKILL",
                    process.pid,
                    wait_seconds,
                )
                process.kill()
                process.wait()
        self._release_process()

    def kill(self) -> None:
        """Stop the engine with SIGKILL, like a crash, so that the next start runs recovery."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            logger.info("killing Neo4j server on %s (pid %d)", self.uri, process.pid)
            process.kill()
            process.wait()
        self._release_process()

    def restart(self) -> Self:
        """Stop the engine cleanly and start it again on the same port and store.

        Returns:
            This server, for chaining.
        """
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the engine and delete the home directory if this object created it."""
        self.stop()
        if self._owns_home and self._home is not None:
            self._resources.release()
            self._home = None
            self._has_started = False

    def read_log(self) -> str:
        """Return the launcher output of the current or last start."""
        return self._read_log_from(self._log_offset)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"Neo4jServer(port={self._port}, home={self._home}, {state})"

    def _command(self, jar: Path) -> list[str]:
        command = [self._java, *self._jvm_options, "-jar", str(jar)]
        command += ["--port", str(self._port), "--home", str(self._home)]
        command += ["--pagecache-size", self._pagecache_size, "--exit-on-stdin-eof"]
        if not self._auth:
            command.append("--no-auth")
        for name, value in self._settings.items():
            command += ["--setting", f"{name}={value}"]
        return command

    def _launch_and_wait(self, jar: Path, *, deadline: float) -> int | None:
        """Start the JVM and wait until it is ready.

        Returns:
            None when Bolt runs a test query, or the exit status of a JVM that exited early.
        """
        environment = dict(os.environ)
        environment.pop(PASSWORD_ENV, None)
        if self._auth:
            environment[PASSWORD_ENV] = self._password

        log_path = self.log_path
        self._log_file = log_path.open("ab")
        self._log_offset = self._log_file.tell()
        header = f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting Neo4j on {HOST}:{self._port}\n"
        self._log_file.write(header.encode())
        self._log_file.flush()

        command = self._command(jar)
        logger.info("starting Neo4j server on %s:%s, home %s", HOST, self._port, self._home)
        # The JVM reads the write end of this pipe: when this Python process dies,
        # the pipe closes and the launcher (--exit-on-stdin-eof) stops the engine.
        # A new session keeps a terminal's Ctrl-C away from the JVM, so that stop() controls it.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )

        try:
            ready = self._wait_until_ready(deadline)
        except BaseException:
            self.kill()
            raise
        if ready:
            return None
        assert self._process is not None
        exit_status = self._process.wait()
        self._release_process()
        return exit_status

    def _wait_until_ready(self, deadline: float) -> bool:
        """Wait for the ready line, a TCP connect and a ``RETURN 1`` query.

        Returns:
            True when Bolt runs the query, False when the JVM exited first.

        Raises:
            Neo4jServerError: If ``deadline`` passes or the engine rejects the credentials.
        """
        assert self._process is not None
        while not _READY_PATTERN.search(self.read_log()):
            if self._process.poll() is not None:
                return False
            self._check_deadline(deadline, "the launcher to print its ready line")
            time.sleep(_POLL_INTERVAL)

        while not _tcp_accepts(HOST, self.port):
            if self._process.poll() is not None:
                return False
            self._check_deadline(deadline, f"a TCP connection to {HOST}:{self.port}")
            time.sleep(_POLL_INTERVAL)

        while True:
            if self._process.poll() is not None:
                return False
            error = self._query_error()
            if error is None:
                return True
            self._check_deadline(deadline, f"'RETURN 1' through Bolt (last error: {error})")
            time.sleep(_POLL_INTERVAL)

    def _query_error(self) -> str | None:
        """Run ``RETURN 1`` through the official driver, if installed.

        Returns:
            None on success or when the driver is missing, otherwise the error text.

        Raises:
            Neo4jServerError: If the engine rejects the credentials.
        """
        try:
            import neo4j
            from neo4j.exceptions import AuthError, DriverError, Neo4jError
        except ImportError:
            return None

        try:
            with neo4j.GraphDatabase.driver(self.uri, auth=self.auth, connection_timeout=5.0) as driver:
                records, _, _ = driver.execute_query("RETURN 1 AS one")
        except AuthError as error:
            raise Neo4jServerError(
                self._failure_message(f"Neo4j rejected the credentials of user '{USER}': {error}")
            ) from error
        except (DriverError, Neo4jError, OSError) as error:
            return f"{type(error).__name__}: {error}"
        if [record["one"] for record in records] != [1]:
            return f"'RETURN 1' returned {records!r}"
        return None

    def _check_deadline(self, deadline: float, waiting_for: str) -> None:
        if time.monotonic() < deadline:
            return
        message = self._failure_message(
            f"timed out after {self._startup_timeout:.0f} s waiting for {waiting_for}"
        )
        self.kill()
        raise Neo4jServerError(message)

    def _failure_message(self, reason: str) -> str:
        lines = [
            f"Neo4j server on {HOST}:{self._port} failed to start: {reason}.",
            f"Launcher output ({self.log_path}), last {_LOG_TAIL_LINES} lines:",
            _tail(self.read_log(), _LOG_TAIL_LINES),
        ]
        if self.debug_log_path.exists():
            debug_log = self.debug_log_path.read_text(errors="replace")
            lines += [f"Neo4j debug log ({self.debug_log_path}), last 20 lines:", _tail(debug_log, 20)]
        return "\n".join(lines)

    def _read_log_from(self, offset: int) -> str:
        if self._home is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def _release_process(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _tail(text: str, line_count: int) -> str:
    return "\n".join(text.rstrip().splitlines()[-line_count:])


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.neo4j_server",
        description="Start a Neo4j 5.26 Community server on 127.0.0.1 until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, help="Bolt port on 127.0.0.1 (default: a free port)")
    parser.add_argument(
        "--home",
        type=Path,
        help="Neo4j home for the store and logs; an existing store is reused "
        "(default: a temporary directory, deleted on exit)",
    )
    parser.add_argument(
        "--password",
        help=f"password of the user neo4j (default: ${PASSWORD_ENV}, else a random one)",
    )
    parser.add_argument("--no-auth", action="store_true", help="disable authentication")
    parser.add_argument(
        "--pagecache-size", default=DEFAULT_PAGECACHE_SIZE, help="page cache size, such as 64m or 1g"
    )
    parser.add_argument("--heap", default="512m", help="maximum JVM heap (-Xmx), such as 512m or 2g")
    parser.add_argument(
        "--jvm-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="further JVM option, written as --jvm-option=-XX:TieredStopAtLevel=1 (faster start); may repeat",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="further Neo4j setting; may repeat",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Start a server, print its URI and credentials, and stop it on Ctrl-C or SIGTERM.

    Args:
        argv: Command-line arguments; defaults to ``sys.argv[1:]``.

    Returns:
        Exit status for the shell.
    """
    arguments = _parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings: dict[str, str] = {}
    for assignment in arguments.setting:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            print(f"invalid --setting {assignment!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        settings[name.strip()] = value.strip()

    password = None
    if not arguments.no_auth:
        password = arguments.password or os.environ.get(PASSWORD_ENV) or None
    server = Neo4jServer(
        arguments.home,
        port=arguments.port,
        password=password,
        auth=not arguments.no_auth,
        pagecache_size=arguments.pagecache_size,
        jvm_options=("-Xms128m", f"-Xmx{arguments.heap}", *arguments.jvm_option),
        settings=settings,
    )

    # SIGTERM ends the wait below the same way as Ctrl-C, so the engine always stops cleanly.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.start()
        print(f"uri: {server.uri}")
        print(f"user: {server.user}")
        # The password is printed on purpose: this command is for local manual use.
        print(f"password: {server.password if server.password is not None else '(authentication off)'}")
        print(f"home: {server.home}")
        print(f"log: {server.log_path}")
        print("Press Ctrl-C to stop.", flush=True)
        while server.is_running:
            time.sleep(1.0)
        # close() below deletes a temporary home, so show the log here.
        print(f"the Neo4j server exited unexpectedly:\n{_tail(server.read_log(), _LOG_TAIL_LINES)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except Neo4jServerError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main())
