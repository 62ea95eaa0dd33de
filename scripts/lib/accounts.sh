# shellcheck shell=bash
# The hotspot's Unix accounts and the operator UI's self-signed certificate: one recipe, sourced
# by scripts/install (the router) and run by the demo lab (devtools/lab), so both make them the
# same way. The caller defines say() for its messages.
#
#   hotspot_accounts                 group and user hotspot (the residents' portal), user
#                                    hotspot-operator (the operator UI) in group hotspot; safe twice
#   operator_certificate KEY CRT HOST ADDRESS [GROUP]
#                                    a self-signed certificate for HOST and ADDRESS; the key
#                                    0640, root:GROUP when GROUP is given (the operator UI's
#                                    user), else left as it is (a --root install)
#
# As a script: bash scripts/lib/accounts.sh accounts | certificate KEY CRT HOST ADDRESS [GROUP]

hotspot_accounts() {
    if ! getent group hotspot >/dev/null; then
        groupadd --system hotspot
        say "made group hotspot"
    fi
    if ! getent passwd hotspot >/dev/null; then
        useradd --system --gid hotspot --home-dir /var/lib/hotspot --no-create-home \
            --shell /usr/sbin/nologin --comment "village hotspot portal" hotspot
        say "made user hotspot"
    fi
    # The operator UI's own user: hotspotd takes operator operations from it, never from
    # the residents' portal (user hotspot). In group hotspot for the socket and the database.
    if ! getent passwd hotspot-operator >/dev/null; then
        useradd --system --user-group --groups hotspot --home-dir /var/lib/hotspot \
            --no-create-home --shell /usr/sbin/nologin --comment "village hotspot operator UI" \
            hotspot-operator
        say "made user hotspot-operator"
    fi
}

# Its SHA-256 fingerprint (`hotspotctl operator certificate`) is what the operator compares
# the first time a browser asks. Passwords never cross the Wi-Fi in clear.
operator_certificate() {
    local key=$1 crt=$2 host=$3 address=$4 group=${5:-}
    (umask 0077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
        -subj "/CN=$host" -addext "subjectAltName=DNS:$host,IP:$address" \
        -keyout "$key" -out "$crt" 2>/dev/null) || return 1
    chmod 0644 "$crt"
    chmod 0640 "$key"
    if [ -n "$group" ]; then chown "root:$group" "$key"; fi
    say "made the operator UI's certificate $crt for $host ($address)"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    say() { echo "accounts: $*" >&2; }
    case "${1:-}" in
    accounts) hotspot_accounts ;;
    certificate)
        shift
        [ $# -ge 4 ] || { echo "usage: $0 certificate KEY CRT HOST ADDRESS [GROUP]" >&2; exit 2; }
        operator_certificate "$@" || { echo "accounts: openssl could not make $2" >&2; exit 1; }
        ;;
    *)
        echo "usage: $0 accounts | certificate KEY CRT HOST ADDRESS [GROUP]" >&2
        exit 2
        ;;
    esac
fi
