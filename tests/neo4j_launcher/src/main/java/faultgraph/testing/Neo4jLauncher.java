package faultgraph.testing;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.configuration.helpers.PortBindException;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

/**
 * Starts an embedded Neo4j Community engine with the Bolt connector on 127.0.0.1, for tests.
 *
 * <p>Usage: {@code java -Xmx512m -jar neo4j-launcher.jar --port PORT --home DIR [options]}.
 * The engine keeps its store under {@code DIR/data} and its logs under {@code DIR/logs}, so a
 * second start on the same directory opens the existing store. The password of the user
 * {@code neo4j} comes from the environment variable {@value #PASSWORD_ENV}, not from the command
 * line, so that it does not show in the process list.
 *
 * <p>Protocol with the parent process: one line {@code BOLT READY 127.0.0.1:PORT} on standard
 * output once Bolt accepts logins with that password. SIGTERM runs a shutdown hook that stops the
 * engine cleanly and then prints {@code STOPPED}. Exit status 2 means invalid arguments, 3 means the
 * Bolt port is already in use, and 1 means any other startup failure.
 *
 * <p>A SIGTERM that arrives before the ready line stops the JVM without a clean engine shutdown,
 * because the shutdown hook is registered only after startup. The next start then runs Neo4j's
 * recovery on the store.
 */
public final class Neo4jLauncher {

    /** Environment variable that contains the password of the user {@code neo4j}. */
    public static final String PASSWORD_ENV = "FAULTGRAPH_NEO4J_PASSWORD";

    /** Exit status when the command line is invalid. */
    public static final int EXIT_USAGE = 2;

    /** Exit status when the Bolt port is already bound by another socket. */
    public static final int EXIT_PORT_IN_USE = 3;

    private static final String USAGE =
            String.join(
                    System.lineSeparator(),
                    "Usage: java -jar neo4j-launcher.jar --port PORT --home DIR [options]",
                    "  --port PORT            Bolt port on 127.0.0.1 (1-65535).",
                    "  --home DIR             Neo4j home: the store goes to DIR/data and logs to DIR/logs.",
                    "                         An existing store in DIR is opened, not replaced.",
                    "  --pagecache-size SIZE  Page cache size, such as 64m or 1g (default 64m).",
                    "  --no-auth              Disable authentication; " + PASSWORD_ENV + " is then ignored.",
                    "  --exit-on-stdin-eof    Stop the engine when standard input reaches end of file.",
                    "  --setting NAME=VALUE   Any other Neo4j setting; may repeat and overrides the defaults.",
                    "The password of the user neo4j is read from the environment variable " + PASSWORD_ENV + ".");

    private Neo4jLauncher() {}

    /**
     * Starts the engine, prints the ready line and blocks until the JVM shuts down.
     *
     * @param args command-line arguments, described in {@link #USAGE}
     */
    public static void main(String[] args) {
        LauncherOptions options;
        try {
            options = LauncherOptions.parse(List.of(args), System.getenv(PASSWORD_ENV));
        } catch (IllegalArgumentException e) {
            System.err.println("neo4j-launcher: " + e.getMessage());
            System.err.println(USAGE);
            System.exit(EXIT_USAGE);
            return;
        }

        DatabaseManagementService service;
        try {
            service = start(options);
        } catch (Exception e) {
            if (hasCause(e, PortBindException.class)) {
                System.err.println(
                        "neo4j-launcher: port 127.0.0.1:" + options.port + " is already in use; choose another --port.");
                System.exit(EXIT_PORT_IN_USE);
                return;
            }
            System.err.println("neo4j-launcher: failed to start Neo4j in " + options.home + ": " + e);
            e.printStackTrace(System.err);
            System.err.println("neo4j-launcher: see " + options.home.resolve("logs/debug.log") + " for details.");
            System.exit(1);
            return;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> stop(service, stopped), "neo4j-launcher-shutdown"));

        PrintStream out = System.out;
        out.println("NEO4J VERSION " + readVersion(service));
        out.println("BOLT READY 127.0.0.1:" + options.port);
        out.flush();

        if (options.exitOnStdinEof) {
            startStdinWatcher();
        }

        // The main thread has nothing left to do; the shutdown hook ends the process.
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static DatabaseManagementService start(LauncherOptions options) throws IOException {
        Files.createDirectories(options.home);

        // The public builder of Neo4j 5.26 takes typed settings or a properties file. A file lets
        // --setting pass any setting by name, and Neo4j rejects an unknown name at startup.
        Path configFile = options.home.resolve("neo4j-launcher.conf");
        Files.writeString(configFile, renderProperties(options.settings()), StandardCharsets.UTF_8);

        DatabaseManagementService service =
                new DatabaseManagementServiceBuilder(options.home).loadPropertiesFromFile(configFile).build();
        try {
            if (options.password != null) {
                setInitialPassword(service.database("system"), options.password);
            }
        } catch (RuntimeException e) {
            service.shutdown();
            throw e;
        }
        return service;
    }

    /**
     * Sets the password of the user {@code neo4j} and clears its password-change flag.
     *
     * <p>A new store creates {@code neo4j} with the password {@code neo4j} and a required change,
     * so until this method returns, that login is also accepted on Bolt, for a password change only.
     */
    private static void setInitialPassword(GraphDatabaseService system, String password) {
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", Map.of("password", password));
        } catch (QueryExecutionException e) {
            // A restart on an existing store with the same password lands here, because Neo4j
            // rejects a new password that equals the old one. Any other error is re-thrown.
            if (!e.getMessage().contains("Old password and new password cannot be the same")) {
                throw e;
            }
        }
    }

    /**
     * Starts a daemon thread that exits the JVM, through the shutdown hook, once standard input
     * reaches end of file. A parent process that keeps the write end of a pipe open thus stops
     * the engine even when the parent dies without sending SIGTERM.
     */
    private static void startStdinWatcher() {
        Thread watcher =
                new Thread(
                        () -> {
                            try {
                                while (System.in.read() != -1) {
                                    // Input is ignored; only the end of the stream matters.
                                }
                            } catch (IOException e) {
                                System.err.println("neo4j-launcher: reading standard input failed, stopping: " + e);
                            }
                            System.exit(0);
                        },
                        "neo4j-launcher-stdin-watcher");
        watcher.setDaemon(true);
        watcher.start();
    }

    private static boolean hasCause(Throwable error, Class<? extends Throwable> type) {
        for (Throwable cause = error; cause != null; cause = cause.getCause()) {
            if (type.isInstance(cause)) {
                return true;
            }
        }
        return false;
    }

    /** Returns the Neo4j version for the log; a failure here must not keep the ready line back. */
    private static String readVersion(DatabaseManagementService service) {
        try {
            return service.database("system")
                    .executeTransactionally(
                            "CALL dbms.components() YIELD name, versions, edition"
                                    + " RETURN name + ' ' + versions[0] + ' ' + edition AS version",
                            Map.of(),
                            result -> result.hasNext() ? String.valueOf(result.next().get("version")) : "unknown");
        } catch (RuntimeException e) {
            System.err.println("neo4j-launcher: reading the Neo4j version failed: " + e);
            return "unknown";
        }
    }

    private static void stop(DatabaseManagementService service, CountDownLatch stopped) {
        try {
            service.shutdown();
            System.out.println("STOPPED");
        } catch (RuntimeException e) {
            System.err.println("neo4j-launcher: shutdown failed: " + e);
            e.printStackTrace(System.err);
        } finally {
            System.out.flush();
            stopped.countDown();
        }
    }

    private static String renderProperties(Map<String, String> settings) {
        StringBuilder text = new StringBuilder("# Written by neo4j-launcher at each start; edits are lost.\n");
        for (Map.Entry<String, String> entry : settings.entrySet()) {
            text.append(entry.getKey()).append('=').append(entry.getValue()).append('\n');
        }
        return text.toString();
    }

    /** Parsed command line of the launcher. */
    private static final class LauncherOptions {
        private final int port;
        private final Path home;
        private final String pagecacheSize;
        private final String password;
        private final boolean exitOnStdinEof;
        private final Map<String, String> extraSettings;

        private LauncherOptions(
                int port,
                Path home,
                String pagecacheSize,
                String password,
                boolean exitOnStdinEof,
                Map<String, String> extraSettings) {
            this.port = port;
            this.home = home;
            this.pagecacheSize = pagecacheSize;
            this.password = password;
            this.exitOnStdinEof = exitOnStdinEof;
            this.extraSettings = extraSettings;
        }

        static LauncherOptions parse(List<String> args, String passwordFromEnv) {
            Integer port = null;
            Path home = null;
            String pagecacheSize = "64m";
            boolean authEnabled = true;
            boolean exitOnStdinEof = false;
            Map<String, String> extraSettings = new LinkedHashMap<>();

            for (int i = 0; i < args.size(); i++) {
                String arg = args.get(i);
                switch (arg) {
                    case "--port" -> port = parsePort(valueAfter(args, i++));
                    case "--home" -> home = Path.of(valueAfter(args, i++)).toAbsolutePath().normalize();
                    case "--pagecache-size" -> pagecacheSize = valueAfter(args, i++);
                    case "--no-auth" -> authEnabled = false;
                    case "--exit-on-stdin-eof" -> exitOnStdinEof = true;
                    case "--setting" -> {
                        String assignment = valueAfter(args, i++);
                        int equals = assignment.indexOf('=');
                        if (equals <= 0) {
                            throw new IllegalArgumentException(
                                    "invalid --setting '" + assignment + "': expected NAME=VALUE");
                        }
                        extraSettings.put(assignment.substring(0, equals).trim(), assignment.substring(equals + 1).trim());
                    }
                    default -> throw new IllegalArgumentException("unknown argument '" + arg + "'");
                }
            }

            if (port == null) {
                throw new IllegalArgumentException("missing --port");
            }
            if (home == null) {
                throw new IllegalArgumentException("missing --home");
            }
            String password = null;
            if (authEnabled) {
                if (passwordFromEnv == null || passwordFromEnv.isEmpty()) {
                    throw new IllegalArgumentException(
                            "missing password: set " + PASSWORD_ENV + " or pass --no-auth");
                }
                password = passwordFromEnv;
            }
            return new LauncherOptions(port, home, pagecacheSize, password, exitOnStdinEof, extraSettings);
        }

        /** Returns the Neo4j settings by name: the launcher defaults, then the --setting overrides. */
        Map<String, String> settings() {
            String address = "127.0.0.1:" + port;
            Map<String, String> settings = new LinkedHashMap<>();
            settings.put("server.bolt.enabled", "true");
            settings.put("server.bolt.listen_address", address);
            settings.put("server.bolt.advertised_address", address);
            settings.put("server.bolt.tls_level", "DISABLED");
            settings.put("dbms.security.auth_enabled", Boolean.toString(password != null));
            settings.put("server.memory.pagecache.size", pagecacheSize);
            // Usage data reporting is on by default (checked in 5.26.30) and would contact a
            // Neo4j server on the internet, but tests must send no traffic beyond this machine.
            settings.put("dbms.usage_report.enabled", "false");
            // With preallocation, each database (system and neo4j) starts with a 256 MiB
            // transaction log file, so a test home takes over 512 MiB instead of about 2 MiB.
            settings.put("db.tx_log.preallocate", "false");
            // Netty waits this many seconds (default 5) for each of the two Bolt event loop groups
            // to go quiet, which made a clean stop take about 10 s.
            settings.put("internal.dbms.bolt.netty_server_shutdown_quiet_period", "0");
            settings.putAll(extraSettings);
            return settings;
        }

        private static String valueAfter(List<String> args, int index) {
            if (index + 1 >= args.size()) {
                throw new IllegalArgumentException("missing value after " + args.get(index));
            }
            return args.get(index + 1);
        }

        private static int parsePort(String text) {
            int port;
            try {
                port = Integer.parseInt(text);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("invalid --port '" + text + "': expected a number from 1 to 65535");
            }
            if (port < 1 || port > 65535) {
                throw new IllegalArgumentException("invalid --port " + port + ": expected a number from 1 to 65535");
            }
            return port;
        }
    }
}
