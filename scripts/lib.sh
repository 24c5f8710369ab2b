# shellcheck shell=bash
# Helpers sourced by the scripts in this folder (run from the repository root).
#
# The private services listen on free loopback ports and keep their files in their own
# directories: the machine's own PostgreSQL (5432) and Mosquitto (1883) are never used.
#
#   start_private_postgres             throwaway server for tests (fsync off), deleted on stop
#   start_private_postgres_with OPTIONS  the same, with more server options (-c name=value)
#   start_persistent_postgres DIR PORT server whose data stays in DIR (develop), PORT if free
#   stop_private_postgres
#   pause_private_postgres / resume_private_postgres  stop it, keeping its data; start it
#                                      again as before (scripts/fault-injection)
#   start_private_mosquitto [PORT [DIR]] PORT if free, else any free port; state kept in DIR
#   stop_private_mosquitto
#   start_moto                         moto's server, standing in for AWS IoT Core's API
#   stop_moto
#
# Starting exports DATABASE_URL, PGHOST, PGPORT, PGUSER, PGDATABASE; MQTT_URL (with the
# broker admin's user and password), CREDENTIALS_PROVIDER, MOSQUITTO_PID, MOSQUITTO_BIN,
# MOSQUITTO_CONF_TEMPLATE, MOSQUITTO_DYNAMIC_SECURITY_FILE; MOTO_URL. Stopping is safe to
# repeat, and after the service died. Each start registers its stop with on_exit, so a
# script stops what it started whatever its outcome:
#
#   on_exit COMMAND [ARGUMENT...]      run it when the script exits (below)
#   stop_background_process NAME PID GRACE   TERM, then KILL after GRACE seconds
#   build_harness                      builds the harness with cargo's progress shown

readonly DATABASE_NAME=sensorium

# What this shell started. Values inherited from a parent script describe the parent's
# services, which are not ours to stop.
unset PRIVATE_POSTGRES_DATA PRIVATE_POSTGRES_RUN PRIVATE_POSTGRES_LOG PRIVATE_POSTGRES_OPTIONS
unset MOSQUITTO_TEMPORARY_DIR MOSQUITTO_PID MOSQUITTO_PORT
unset MOTO_DIR MOTO_PID MOTO_PORT

# Queries are checked at compile time against the committed `.sqlx/` data, never against
# whatever database DATABASE_URL names (a fresh one has no tables until migrated).
export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"

# The commands on_exit registered, each quoted for eval.
EXIT_COMMANDS=()

# Runs the command when the script exits: at its end, on a failure, or on INT or TERM.
# Commands run in the reverse order of their registration, so what was started last
# stops first; one that fails does not keep the others from running, and makes the exit
# status 1 if it was 0. A command registered twice runs once.
on_exit() {
    local command registered
    printf -v command '%q ' "$@"
    for registered in "${EXIT_COMMANDS[@]}"; do
        [[ $registered != "$command" ]] || return 0
    done
    EXIT_COMMANDS+=("$command")
    if ((${#EXIT_COMMANDS[@]} == 1)); then
        trap run_exit_commands EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
    fi
}

run_exit_commands() {
    local status=$? index
    trap '' INT TERM
    for ((index = ${#EXIT_COMMANDS[@]} - 1; index >= 0; index--)); do
        if ! eval "${EXIT_COMMANDS[index]}"; then
            ((status != 0)) || status=1
        fi
    done
    exit "$status"
}

say() {
    printf '==> %s\n' "$*" >&2
}

fail() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# A URL without its password, for printing.
redact_url() {
    sed -E 's#^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@#\1:***@#' <<<"$1"
}

# True while the process runs (a zombie, dead but not yet reaped, counts as stopped).
process_is_alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# Waits up to $2 seconds for process $1 to stop.
wait_for_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while process_is_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Sends signal $1 to process $2; a process that is already gone is not an error.
signal_if_alive() {
    kill -s "$1" "$2" 2>/dev/null || ! process_is_alive "$2"
}

# Stops process $1 with TERM, then KILL after $2 seconds.
stop_process() {
    local pid=$1 grace=$2
    signal_if_alive TERM "$pid"
    if ! wait_for_exit "$pid" "$grace"; then
        say "process $pid ignored TERM for ${grace}s; killing it"
        signal_if_alive KILL "$pid"
        wait_for_exit "$pid" 5
    fi
}

# Stops background process $2, named $1 in the log, if it still runs: TERM, then KILL
# after $3 seconds.
stop_background_process() {
    local name=$1 pid=$2 grace=$3
    if process_is_alive "$pid"; then
        say "stopping $name"
        stop_process "$pid" "$grace"
    fi
}

# Builds the harness with cargo's own progress on the terminal: a first build takes
# minutes, and `cargo run --quiet --bin harness` after it starts at once.
build_harness() {
    say "cargo build --bin harness"
    cargo build --bin harness
}

port_accepts_connections() {
    # shellcheck disable=SC2016 # $1 is the inner shell's, on purpose
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Prints $1 if nothing listens on it, else a random free port. Random ports come from
# below Linux's ephemeral range (32768+), so outgoing connections do not hold them.
find_free_port() {
    local preferred=${1:-} port _
    if [[ -n $preferred ]] && ! port_accepts_connections "$preferred"; then
        echo "$preferred"
        return
    fi
    for _ in {1..100}; do
        port=$((20000 + RANDOM % 12000))
        if ! port_accepts_connections "$port"; then
            echo "$port"
            return
        fi
    done
    fail "found no free TCP port on 127.0.0.1"
}

# Prints the directory of initdb, pg_ctl and postgres: the newest Debian one, else
# pg_config's, else the one on PATH; fails if there is none.
postgres_bin_dir() {
    local newest dir
    newest=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    if [[ -x $newest ]]; then
        dirname "$newest"
    elif command -v pg_config >/dev/null && dir=$(pg_config --bindir) && [[ -x $dir/initdb ]]; then
        echo "$dir"
    elif dir=$(command -v initdb); then
        dirname "$dir"
    else
        return 1
    fi
}

# Prints the path of the mosquitto binary (Debian puts it in /usr/sbin, which is not on
# every user's PATH); fails if there is none.
mosquitto_binary() {
    local candidate
    for candidate in "$(command -v mosquitto)" /usr/sbin/mosquitto /usr/local/sbin/mosquitto; do
        if [[ -n $candidate && -x $candidate ]]; then
            echo "$candidate"
            return
        fi
    done
    return 1
}

# Installs PostgreSQL, Mosquitto and moto through ./scripts/setup when one is missing.
ensure_service_binaries() {
    if ! postgres_bin_dir >/dev/null || ! mosquitto_binary >/dev/null ||
        ! command -v mosquitto_ctrl >/dev/null || ! command -v python3 >/dev/null ||
        ! command -v moto_server >/dev/null; then
        say "PostgreSQL, Mosquitto or moto is missing; running ./scripts/setup"
        ./scripts/setup
    fi
}

# --- PostgreSQL ------------------------------------------------------------------------

# initdb and postgres refuse to run as root: as root, run them as the user postgres
# (from /, which that user can always enter).
as_postgres() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Hands a directory we created to the user that runs PostgreSQL.
give_to_postgres() {
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$@"
    fi
}

check_postgres_user() {
    if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        fail "PostgreSQL cannot run as root and there is no user postgres (./scripts/setup installs Debian's postgresql, which creates it)"
    fi
}

# psql of the same version as the server where there is one, else the one on PATH.
postgres_client() {
    if [[ -x $PG_BIN_DIR/psql ]]; then
        "$PG_BIN_DIR/psql" "$@"
    else
        psql "$@"
    fi
}

postgres_is_running() {
    [[ -f $1/postmaster.pid ]] && as_postgres "$PG_BIN_DIR/pg_ctl" status -D "$1" >/dev/null
}

# A directory for the socket (and a throwaway server's data and log), owned by postgres.
make_postgres_run_directory() {
    local directory
    directory=$(mktemp -d "${TMPDIR:-/tmp}/sensorium-postgres.XXXXXX")
    chmod 700 "$directory"
    give_to_postgres "$directory"
    # pg_ctl passes -o through a shell; a path with spaces would split.
    [[ $directory != *[[:space:]]* ]] || fail "temporary directory $directory contains spaces; set TMPDIR"
    as_postgres test -w "$directory" ||
        fail "the user postgres cannot write to $directory; set TMPDIR to a directory it can reach"
    echo "$directory"
}

initialize_postgres_data() {
    local data=$1
    shift
    say "creating a PostgreSQL cluster in $data"
    as_postgres "$PG_BIN_DIR/initdb" --pgdata="$data" --auth=trust --username=postgres \
        --encoding=UTF8 --no-locale "$@" >"$data.initdb.log" 2>&1 ||
        fail "initdb failed: $(cat "$data.initdb.log")"
    rm "$data.initdb.log"
}

# Starts the server of data directory $1 with its socket in $2, logging to $3, on port $4
# if free (else a free one), with extra server options $5; creates the database if missing.
start_postgres_server() {
    local data=$1 run=$2 log=$3 port=$4 options=$5 attempt exists
    # Set before starting, so that a failure below still lets stop_private_postgres stop it.
    PRIVATE_POSTGRES_DATA=$data PRIVATE_POSTGRES_RUN=$run
    for attempt in 1 2 3; do
        port=$(find_free_port "$port")
        say "starting private PostgreSQL on port $port"
        # Kept for resume_private_postgres.
        PRIVATE_POSTGRES_LOG=$log
        PRIVATE_POSTGRES_OPTIONS="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$run -c max_connections=300 $options"
        if as_postgres "$PG_BIN_DIR/pg_ctl" start --wait --silent --pgdata="$data" --log="$log" \
            -o "$PRIVATE_POSTGRES_OPTIONS"; then
            break
        fi
        # Most likely another process took the port between our look and the bind.
        say "PostgreSQL did not start (attempt $attempt); the end of $log:"
        tail -n 15 "$log" >&2
        ((attempt < 3)) || fail "could not start PostgreSQL"
        port=""
    done

    export PGHOST=127.0.0.1 PGPORT=$port PGUSER=postgres PGDATABASE=$DATABASE_NAME
    export DATABASE_URL="postgres://postgres@127.0.0.1:$port/$DATABASE_NAME"

    exists=$(postgres_client -X -q -A -t -v ON_ERROR_STOP=1 -d postgres \
        -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE_NAME'")
    if [[ -z $exists ]]; then
        say "creating database $DATABASE_NAME"
        postgres_client -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DATABASE_NAME"
    fi
}

# A throwaway server for tests: everything lives in one temporary directory, deleted on
# stop. Durability is traded for speed (fsync off): a crash loses nothing we need.
start_private_postgres() {
    start_private_postgres_with ""
}

# start_private_postgres with more server options $1 (`-c name=value ...`), such as a
# benchmark's memory settings.
start_private_postgres_with() {
    local run extra_options=$1
    on_exit stop_private_postgres
    check_postgres_user
    PG_BIN_DIR=$(postgres_bin_dir) || fail "PostgreSQL is not installed; run ./scripts/setup"
    run=$(make_postgres_run_directory)
    # Set early so that a failure below still lets stop_private_postgres clean up.
    PRIVATE_POSTGRES_RUN=$run
    initialize_postgres_data "$run/data" --no-sync
    start_postgres_server "$run/data" "$run" "$run/postgres.log" "" \
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off $extra_options"
}

# A server whose data persists in $1 (created on first use), on port $2 when it is free.
start_persistent_postgres() {
    local data=$1 port=$2 log run version
    on_exit stop_private_postgres
    check_postgres_user
    PG_BIN_DIR=$(postgres_bin_dir) || fail "PostgreSQL is not installed; run ./scripts/setup"
    [[ $data == /* ]] || fail "start_persistent_postgres needs an absolute path, not $data"
    log="$(dirname "$data")/postgres.log"
    mkdir -p "$(dirname "$data")"
    if [[ ! -f $data/PG_VERSION ]]; then
        install -d -m 700 "$data"
        give_to_postgres "$data"
        as_postgres test -w "$data" ||
            fail "the user postgres cannot reach $data; set DATABASE_URL to use another server"
        initialize_postgres_data "$data"
    fi
    version=$("$PG_BIN_DIR/postgres" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')
    [[ $(<"$data/PG_VERSION") == "$version" ]] ||
        fail "$data holds a PostgreSQL $(<"$data/PG_VERSION") cluster but the server is $version; delete it to start afresh"
    if postgres_is_running "$data"; then
        say "stopping the PostgreSQL an earlier run left running in $data"
        as_postgres "$PG_BIN_DIR/pg_ctl" stop --wait --silent --mode=fast --pgdata="$data"
    fi
    touch "$log"
    give_to_postgres "$log"
    run=$(make_postgres_run_directory)
    PRIVATE_POSTGRES_RUN=$run
    start_postgres_server "$data" "$run" "$log" "$port" ""
}

# Stops the server started above (fast: sessions are ended), keeping its data.
pause_private_postgres() {
    as_postgres "$PG_BIN_DIR/pg_ctl" stop --wait --silent --mode=fast --pgdata="$PRIVATE_POSTGRES_DATA"
}

# Starts the server paused above again, on the same port with the same settings; a
# server that runs already is left alone.
resume_private_postgres() {
    if ! postgres_is_running "$PRIVATE_POSTGRES_DATA"; then
        as_postgres "$PG_BIN_DIR/pg_ctl" start --wait --silent --pgdata="$PRIVATE_POSTGRES_DATA" \
            --log="$PRIVATE_POSTGRES_LOG" -o "$PRIVATE_POSTGRES_OPTIONS"
    fi
}

# Stops the server started above, if it still runs, and removes what was temporary.
# Returns non-zero (without exiting) if it could not, so that on_exit's other commands
# still run.
stop_private_postgres() {
    local data=${PRIVATE_POSTGRES_DATA:-} run=${PRIVATE_POSTGRES_RUN:-}
    if [[ -n $data ]] && postgres_is_running "$data"; then
        say "stopping private PostgreSQL on port ${PGPORT:-?}"
        if ! as_postgres "$PG_BIN_DIR/pg_ctl" stop --wait --silent --mode=fast --pgdata="$data" &&
            postgres_is_running "$data"; then
            printf 'error: could not stop PostgreSQL in %s\n' "$data" >&2
            return 1
        fi
    fi
    if [[ -n $run ]]; then
        rm -rf "$run"
    fi
    unset PRIVATE_POSTGRES_DATA PRIVATE_POSTGRES_RUN PRIVATE_POSTGRES_LOG PRIVATE_POSTGRES_OPTIONS
}

# --- Mosquitto -------------------------------------------------------------------------

# Waits until the broker $1 logged that it runs and accepts connections on port $2.
wait_for_mosquitto() {
    local pid=$1 port=$2 directory=$3 deadline=$((SECONDS + 10))
    while ((SECONDS < deadline)); do
        process_is_alive "$pid" || return 1
        if grep -q ' running$' "$directory/mosquitto.log" 2>/dev/null && port_accepts_connections "$port"; then
            # The log line and the port could belong to another broker on a race; ours
            # would have exited on failing to bind.
            process_is_alive "$pid"
            return
        fi
        sleep 0.1
    done
    return 1
}

# The dynamic-security plugin of the installed Mosquitto (Debian's package ships it).
mosquitto_dynamic_security_plugin() {
    local candidate
    for candidate in /usr/lib/*/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so \
        /usr/local/lib/mosquitto_dynamic_security.so; do
        if [[ -f $candidate ]]; then
            echo "$candidate"
            return
        fi
    done
    return 1
}

# Creates the plugin's file $1 with one admin, the server's user "sensorium" with
# password $2. The admin role mosquitto_ctrl writes may subscribe to everything but
# publish only plugin commands; the server also publishes configurations, and tests
# publish as sensors, so it may publish anywhere too.
create_dynamic_security_file() {
    local file=$1 password=$2
    mosquitto_ctrl dynsec init "$file" sensorium "$password" >/dev/null ||
        fail "mosquitto_ctrl could not create $file"
    python3 - "$file" <<'PYTHON'
import json, sys
path = sys.argv[1]
with open(path) as file:
    security = json.load(file)
admin = next(role for role in security["roles"] if role["rolename"] == "admin")
admin["acls"].append({"acltype": "publishClientSend", "topic": "#", "allow": True})
with open(path, "w") as file:
    json.dump(security, file, indent=1)
PYTHON
    chmod 600 "$file"
}

# Starts a private broker on port $1 if free (else a free one), configured by
# scripts/mosquitto.conf.template: anonymous access off, sensors' credentials managed
# by the dynamic-security plugin, the server an admin of it (MQTT_URL carries its user
# and password). With a directory $2 the broker's state (the plugin's file with its
# clients, the admin password, persisted sessions) stays there across runs; without,
# everything lives in a temporary directory, deleted on stop.
start_private_mosquitto() {
    local port=${1:-} state=${2:-} directory persistence plugin attempt pid password
    on_exit stop_private_mosquitto
    MOSQUITTO_BIN=$(mosquitto_binary) || fail "Mosquitto is not installed; run ./scripts/setup"
    plugin=$(mosquitto_dynamic_security_plugin) ||
        fail "Mosquitto's dynamic-security plugin is missing; run ./scripts/setup"
    if [[ -n $state ]]; then
        directory=$state persistence=true
        mkdir -p "$directory"
    else
        directory=$(mktemp -d "${TMPDIR:-/tmp}/sensorium-mosquitto.XXXXXX") persistence=false
        MOSQUITTO_TEMPORARY_DIR=$directory
    fi
    if [[ ! -f $directory/dynamic-security.json ]]; then
        say "creating the broker's admin (user sensorium) in $directory"
        password=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
        (umask 077 && printf '%s\n' "$password" >"$directory/admin-password")
        create_dynamic_security_file "$directory/dynamic-security.json" "$password"
        # For tests that run a broker of their own, with the same admin.
        cp "$directory/dynamic-security.json" "$directory/dynamic-security.initial.json"
    fi
    password=$(<"$directory/admin-password")
    # For tests that run a broker of their own (to stop and restart it): the binary, and
    # this configuration with @PORT@ and @DIRECTORY@ to fill in.
    sed -e "s|@PLUGIN@|$plugin|g" -e "s|@USER@|$(id -un)|g" -e "s|@PERSISTENCE@|$persistence|g" \
        scripts/mosquitto.conf.template >"$directory/mosquitto.conf.template"
    export MOSQUITTO_BIN MOSQUITTO_CONF_TEMPLATE=$directory/mosquitto.conf.template
    export MOSQUITTO_DYNAMIC_SECURITY_FILE=$directory/dynamic-security.initial.json
    for attempt in 1 2 3; do
        port=$(find_free_port "$port")
        sed -e "s|@PORT@|$port|g" -e "s|@DIRECTORY@|$directory|g" \
            "$MOSQUITTO_CONF_TEMPLATE" >"$directory/mosquitto.conf"
        rm -f "$directory/mosquitto.log" "$directory/mosquitto.pid"
        say "starting private Mosquitto on port $port"
        # Its own session, so that Ctrl-C in a terminal reaches the harness, not the
        # broker: the scripts stop the broker after whatever uses it.
        setsid "$MOSQUITTO_BIN" -c "$directory/mosquitto.conf" \
            </dev/null >>"$directory/mosquitto.out" 2>&1 &
        pid=$!
        if wait_for_mosquitto "$pid" "$port" "$directory"; then
            export MOSQUITTO_PID=$pid MOSQUITTO_PORT=$port
            export MQTT_URL="mqtt://sensorium:$password@127.0.0.1:$port" CREDENTIALS_PROVIDER=mosquitto
            return
        fi
        stop_process "$pid" 5
        say "Mosquitto did not start (attempt $attempt):"
        cat "$directory/mosquitto.out" >&2
        if [[ -f $directory/mosquitto.log ]]; then
            tail -n 15 "$directory/mosquitto.log" >&2
        fi
        ((attempt < 3)) || fail "could not start Mosquitto"
        port=""
    done
}

# Stops the broker started above, if it still runs, and removes its directory.
stop_private_mosquitto() {
    if [[ -n ${MOSQUITTO_PID:-} ]] && process_is_alive "$MOSQUITTO_PID"; then
        say "stopping private Mosquitto on port ${MOSQUITTO_PORT:-?}"
        if ! stop_process "$MOSQUITTO_PID" 10; then
            printf 'error: could not stop Mosquitto (pid %s)\n' "$MOSQUITTO_PID" >&2
            return 1
        fi
    fi
    if [[ -n ${MOSQUITTO_TEMPORARY_DIR:-} ]]; then
        rm -rf "$MOSQUITTO_TEMPORARY_DIR"
    fi
    unset MOSQUITTO_PID MOSQUITTO_PORT MOSQUITTO_TEMPORARY_DIR
}

# --- moto ------------------------------------------------------------------------------

# Waits until moto's server $1 answers HTTP on port $2.
wait_for_moto() {
    local pid=$1 port=$2 deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        process_is_alive "$pid" || return 1
        if curl --silent --fail --max-time 2 --output /dev/null "http://127.0.0.1:$port/moto-api/data.json"; then
            # Another server could have answered on a race; ours would have exited on
            # failing to bind.
            process_is_alive "$pid"
            return
        fi
        sleep 0.2
    done
    return 1
}

# Starts moto's server (PyPI moto[server]) on a free port: the AWS IoT control plane
# the credentials provider's tests talk to. Its state lives in its memory only.
start_moto() {
    local port directory attempt pid
    on_exit stop_moto
    command -v moto_server >/dev/null || fail "moto_server is not installed; run ./scripts/setup"
    directory=$(mktemp -d "${TMPDIR:-/tmp}/sensorium-moto.XXXXXX")
    MOTO_DIR=$directory
    for attempt in 1 2 3; do
        port=$(find_free_port "")
        say "starting moto on port $port"
        # Its own session, like the broker's: Ctrl-C reaches the tests, and the scripts
        # stop moto after them.
        setsid moto_server -H 127.0.0.1 -p "$port" </dev/null >>"$directory/moto.log" 2>&1 &
        pid=$!
        MOTO_PID=$pid MOTO_PORT=$port
        if wait_for_moto "$pid" "$port"; then
            export MOTO_URL="http://127.0.0.1:$port"
            return
        fi
        stop_process "$pid" 5
        say "moto did not start (attempt $attempt); the end of its log:"
        tail -n 15 "$directory/moto.log" >&2
        ((attempt < 3)) || fail "could not start moto"
    done
}

# Stops moto's server started above, if it still runs, and removes its directory.
stop_moto() {
    if [[ -n ${MOTO_PID:-} ]] && process_is_alive "$MOTO_PID"; then
        say "stopping moto on port ${MOTO_PORT:-?}"
        if ! stop_process "$MOTO_PID" 10; then
            printf 'error: could not stop moto (pid %s)\n' "$MOTO_PID" >&2
            return 1
        fi
    fi
    if [[ -n ${MOTO_DIR:-} ]]; then
        rm -rf "$MOTO_DIR"
    fi
    unset MOTO_PID MOTO_PORT MOTO_DIR MOTO_URL
}
