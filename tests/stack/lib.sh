# shellcheck shell=bash
# Shared helpers for the stack scripts (tests/stack/*, scripts/*, bench/run).
# Sourced, never run: no "set -e" games here, callers set their own options.

stack_log() { echo "[stack] $*" >&2; }
stack_die() { echo "[stack] error: $*" >&2; exit 1; }

# The PostgreSQL server binaries: PG_BINDIR wins, then Debian's newest
# /usr/lib/postgresql/N/bin, then whatever initdb is on PATH (Fedora).
stack_pg_bindir() {
    if [[ -n ${PG_BINDIR:-} ]]; then echo "$PG_BINDIR"; return; fi
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return; fi
    d=$(command -v initdb 2>/dev/null) || stack_die "PostgreSQL server binaries not found (install postgresql)"
    dirname "$(readlink -f "$d")"
}

# nginx lives in /usr/sbin, which a normal user's PATH on Debian lacks.
stack_nginx_bin() {
    command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } ||
        stack_die "nginx not found (install nginx)"
}

# Is PID a live process? A zombie is not: PID 1 of a container may never
# reap what we started, and kill -0 succeeds on a zombie.
stack_alive() {
    local pid=$1 state
    [[ -n $pid && -r /proc/$pid/stat ]] || return 1
    state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z && $state != X ]]
}

# Send SIG to the pid in PIDFILE and wait up to SECS for it to go; then KILL.
# The pid was started by stack_spawn, so it leads its own process group:
# whatever is left in that group afterwards (workers orphaned by a master
# that crashed) is killed too, so no stray worker keeps a socket open.
stack_stop_pidfile() {
    local pidfile=$1 sig=${2:-TERM} secs=${3:-20} pid i
    [[ -f $pidfile ]] || return 0
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ $pid =~ ^[0-9]+$ ]] || { rm -f "$pidfile"; return 0; }
    if stack_alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < secs * 10; i++)); do
            stack_alive "$pid" || break
            sleep 0.1
        done
        if stack_alive "$pid"; then
            stack_log "pid $pid ($pidfile) still running after ${secs}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
}

# Start a long-running program in the background, in its own session (so a
# terminal's Ctrl-C or hang-up reaches only the script that owns it), with
# output appended to LOG and its pid in PIDFILE.
# Usage: stack_spawn PIDFILE LOG cmd args...
stack_spawn() {
    local pidfile=$1 log=$2
    shift 2
    setsid "$@" >>"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
}

# Free TCP ports on 127.0.0.1, chosen by the kernel. All are held open
# together so the N ports differ; another process may still grab one
# before we bind it, so callers that can retry do.
stack_free_ports() {
    /usr/bin/python3 - "${1:-1}" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Wait until FILE holds a line "ready <port>" (the convention of our fakes)
# and print the port. Fails after SECS or when PID dies.
stack_wait_ready_port() {
    local file=$1 pid=$2 secs=${3:-15} i port
    for ((i = 0; i < secs * 10; i++)); do
        port=$(sed -n 's/^ready \([0-9][0-9]*\)$/\1/p' "$file" 2>/dev/null | tail -n 1)
        if [[ -n $port ]]; then echo "$port"; return 0; fi
        stack_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# Export every KEY=VALUE line of FILE, taking values literally (no shell
# expansion or quote removal), so a value may hold $, quotes or spaces.
# Comments and blank lines are skipped.
stack_load_env() {
    local line
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        [[ $line =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || continue
        export "${line?}"
    done <"$1"
}

# Value of KEY in a KEY=VALUE file (last one wins), or empty.
stack_env_get() {
    local key=$1 file=$2 line val=''
    [[ -f $file ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        [[ $line == "$key="* ]] && val=${line#*=}
    done <"$file"
    printf '%s' "$val"
}

# The setting names of Gala: the contract's list plus every NAME= (commented
# or not) in etc/gala.env.example, so a setting the app gains later is
# picked up without editing this file.
stack_setting_names() {
    local srcdir=$1
    {
        printf '%s\n' ENVIRONMENT SECRET_KEY DATABASE_URL MIGRATION_DATABASE_URL SCHEMA_DIR \
            DB_POOL_TIMEOUT DB_STATEMENT_TIMEOUT_MS RATE_LIMIT_ENABLED AUTH_RATE_LIMIT_REQUESTS \
            AUTH_RATE_LIMIT_WINDOW_SECONDS WRITE_RATE_LIMIT_REQUESTS WRITE_RATE_LIMIT_WINDOW_SECONDS \
            STRIPE_SECRET_KEY STRIPE_WEBHOOK_SECRET STRIPE_API_BASE STRIPE_PRICE_IDS PLATFORM_FEE_BPS \
            FRONTEND_URL WORKERS REQUEST_TIMEOUT_SECONDS LISTEN MAX_REQUESTS_PER_WORKER SMTP_URL \
            SMTP_USERNAME SMTP_PASSWORD MAIL_FROM ACCESS_TOKEN_TTL_SECONDS MAX_BODY_BYTES \
            TRUSTED_PROXIES LOG_LEVEL
        if [[ -f $srcdir/etc/gala.env.example ]]; then
            sed -n -E 's/^[#[:space:]]*([A-Z][A-Z0-9_]*)=.*/\1/p' "$srcdir/etc/gala.env.example"
        fi
    } | sort -u
}

# A self-signed certificate for localhost and 127.0.0.1 (kept if present).
stack_make_cert() {
    local dir=$1
    [[ -s $dir/cert.pem && -s $dir/key.pem ]] && return 0
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -days 825 -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/key.pem.tmp" -out "$dir/cert.pem.tmp" 2>/dev/null ||
        stack_die "openssl could not make a self-signed certificate in $dir"
    chmod 600 "$dir/key.pem.tmp"
    mv "$dir/key.pem.tmp" "$dir/key.pem"
    mv "$dir/cert.pem.tmp" "$dir/cert.pem"
}

# unix socket paths are limited to 107 bytes. When DIR/NAME would be too
# long (a deep checkout), make DIR a symlink to a short directory in /tmp
# and print the short path to use in socket addresses; else print DIR.
stack_socket_dir() {
    local dir=$1 target
    if [[ -L $dir ]]; then
        target=$(readlink "$dir")
        if [[ -d $target ]]; then echo "$target"; return; fi
        rm -f "$dir"
    fi
    if (( ${#dir} <= 80 )); then
        mkdir -p "$dir"
        echo "$dir"
        return
    fi
    if [[ -d $dir ]]; then
        rmdir "$dir" 2>/dev/null || stack_die "$dir: path too long for unix sockets and not empty"
    fi
    target=$(mktemp -d /tmp/gala-sock.XXXXXX)
    chmod 755 "$target"
    ln -sfn "$target" "$dir"
    echo "$target"
}
