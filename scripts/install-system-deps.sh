#!/usr/bin/env bash
# Install the system programs the test suite runs for real: OpenSSH sshd, a private
# D-Bus + gnome-keyring Secret Service, PostgreSQL and MariaDB servers, tmux.
# As root: apt-get installs what is missing. Otherwise: print the list and fail.
# `--venv`: only what `python3 -m venv` needs (used by `make run` before the venv exists).
set -euo pipefail
PYTHON="${PYTHON:-python3}"
export PATH="$PATH:/usr/sbin:/sbin"  # sshd, useradd, runuser live there; not on a user's PATH

# binary -> Debian package
declare -A NEED=(
  [/usr/sbin/sshd]=openssh-server
  [ssh]=openssh-client
  [ssh-keygen]=openssh-client
  [dbus-daemon]=dbus-daemon
  [gnome-keyring-daemon]=gnome-keyring
  [secret-tool]=libsecret-tools
  [ip]=iproute2
  [ps]=procps
  [tmux]=tmux
  [mariadbd]=mariadb-server
  [mariadb]=mariadb-client
  [pg_config]=postgresql-common
  [psql]=postgresql-client
  [pgbench]=postgresql-contrib
  [setpriv]=util-linux
  [runuser]=util-linux
  [useradd]=passwd
  [mariadb-install-db]=mariadb-server
  [/usr/lib/openssh/sftp-server]=openssh-sftp-server
  [clickhouse-server]=clickhouse-server
  [iperf3]=iperf3
  [systemd-analyze]=systemd
  [ssh-agent]=openssh-client
)

missing=()
# python3 -m venv needs ensurepip, which Debian ships separately.
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [[ "${1:-}" == --venv ]]; then NEED=(); fi
for bin in "${!NEED[@]}"; do
  if [[ "$bin" == /* ]]; then [[ -x "$bin" ]] && continue; else command -v "$bin" >/dev/null 2>&1 && continue; fi
  missing+=("${NEED[$bin]}")
done
# PostgreSQL server binaries (initdb, pg_ctl) live in a versioned directory.
if [[ "${1:-}" != --venv ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then missing+=(postgresql); fi

if [[ $(id -u) -eq 0 ]]; then mkdir -p /run/sshd; fi
if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [[ $(id -u) -ne 0 ]]; then
  echo "tunnel-tui tests need these system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
mkdir -p /run/sshd
