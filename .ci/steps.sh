# Sourced by .ci/setup: each step prints one line; its full output goes to a log file that
# is named on that line, and on failure its last lines and its path are printed.

# step LOG DESCRIPTION COMMAND...
step() {
    local log=$1 what=$2
    shift 2
    echo "setup: $what (log: $log)"
    {
        echo "=== $(date -u +%FT%TZ) $what: $*"
    } >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "setup: $what failed; the last lines of $log:" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        echo "setup: full log: $log" >&2
        exit 1
    fi
}

# apt_install PACKAGE...: Debian packages, the package lists refreshed once per run.
apt_install() {
    if [ -z "${_APT_UPDATED:-}" ]; then
        apt-get update -qq || return
        _APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}
