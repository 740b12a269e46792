#!/usr/bin/env bash
# Installs and starts what aegir's tests and demo need, from Debian's packages.
# Idempotent: installs only what is missing, starts only what is not running.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: must run as root (it installs Debian packages and starts services); run: sudo $0" >&2
  exit 1
fi

pkgs=(nginx apache2 git composer libapache2-mod-fcgid php-fpm php-cli php-mysql php-pgsql php-xml php-gd php-mbstring php-curl
      mariadb-server mariadb-client postgresql postgresql-client openssh-server openssh-client
      wordpress wordpress-theme-twentytwentythree wordpress-theme-twentytwentyone pebble rsync curl ca-certificates iproute2 sudo
      nodejs wrk chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  stamp=/var/lib/apt/periodic/aegir-update-stamp
  if [ ! -f "$stamp" ] || [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    apt-get update -q >/dev/null
    mkdir -p "$(dirname "$stamp")"; touch "$stamp"
  fi
  # Daemons are started (or found running) below.
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

running() { pgrep -x "$1" >/dev/null 2>&1; }

# MariaDB: use the running one, else start it.
if ! running mariadbd && ! running mysqld; then
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do mariadb -uroot -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
fi
# The tests and the demo log in as root over 127.0.0.1 without a password
# (Debian's root logs in over the socket only): give root that login when
# it lacks it. A machine for aegir's tests and demo only, never a
# production database server.
if ! mariadb -h127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1; then
  mariadb -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
fi

# PostgreSQL: use the running cluster, else start it.
if ! running postgres; then
  v=$(ls /etc/postgresql | sort -n | tail -1)
  pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
fi

# php-fpm: the system pool on its default socket.
fpm=$(ls /usr/sbin/php-fpm* 2>/dev/null | sort | tail -1)
if [ -n "$fpm" ] && ! pgrep -f 'php-fpm: master' >/dev/null; then
  mkdir -p /run/php
  "$fpm" --daemonize
fi

# sshd host keys exist (tests run their own sshd on a loopback port with their own keys).
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -A >/dev/null
mkdir -p /run/sshd

echo "deps.sh: ready" >&2
