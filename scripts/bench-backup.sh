#!/usr/bin/env bash
# make bench, backup part: aegir site backup and restore side by side with
# the usual shell way (tar czf of the site's files plus mariadb-dump | gzip,
# and back with tar xzf plus gunzip | mariadb), in one run, on the same real
# WordPress site of about 200 MiB of files and a 50 MiB database
# (scripts/benchsite makes them). Each is run once to warm the caches, then
# ROUNDS times alternately; the medians are reported. The figures in
# docs/benchmarks.md (Backups) come from this output. AEGIR_BEFORE=BINARY
# (an aegir built from another commit) also times its backup in each round,
# for a before and after in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIR=$PWD/bin/aegir
ROUNDS=${ROUNDS:-3}
FILES_MB=${FILES_MB:-200}
DB_MB=${DB_MB:-50}
[ -x "$AEGIR" ] || { echo "bench-backup: no $AEGIR; run make build" >&2; exit 1; }
. scripts/bench-lib.sh
DOMAIN=bench$$.test
aegir_site_delete() { "$AEGIR" -y site delete "$DOMAIN" --no-backup -q >/dev/null 2>&1 || true; }
BENCH_BEFORE_CLEANUP=aegir_site_delete
bench_setup bench-backup "bench$$test"
echo "backup benchmark: setting up $DOMAIN (${FILES_MB} MiB of files, ${DB_MB} MiB of posts) in $work"
# A task that reloads the web server returns once it serves the change:
# a private nginx serves the site.
port=$(free_port)
start_nginx "$work/nginx" "$port" "$AEGIR_HOME/config/bench/nginx.conf"
"$AEGIR" server add bench --host localhost --http nginx --http-port "$port" --http-listen-ip 127.0.0.1 \
  --http-test-cmd "$NGINX_CMD -t" --http-restart-cmd "$NGINX_CMD -s reload" \
  --db mariadb --db-host 127.0.0.1 -q >/dev/null
"$AEGIR" platform add wp --server bench --root "$work/wp" -q >/dev/null
"$AEGIR" site install "$DOMAIN" --platform wp -q >/dev/null
db() { "$AEGIR" site show "$DOMAIN" --format csv --fields db_name | tail -1; }
uploads=$work/wp/wp-content/uploads/$DOMAIN
go run ./scripts/benchsite -uploads "$uploads" -files-mb "$FILES_MB" -db-mb "$DB_MB" | mariadb "$(db)"
chown -R www-data:www-data "$uploads"
files=$(find "$uploads" -type f | wc -l)
files_mb=$(du -sm "$uploads" | cut -f1)
dump_mb=$(( $(mariadb-dump --single-transaction --quick "$(db)" | wc -c) / 1048576 ))

base=$work/baseline
mkdir -p "$base"
now() { date +%s%N; }
secs() { printf '%.2f' "$(echo "($2 - $1) / 1000000000" | bc -l)"; }

aegir_backup() { "$AEGIR" site backup "$DOMAIN" -q >/dev/null; }
before_backup() { "$AEGIR_BEFORE" site backup "$DOMAIN" -q >/dev/null; }
drop_aegir_backups() {
  for id in $("$AEGIR" backup list --site "$DOMAIN" --format csv --fields id | tail -n +2); do
    "$AEGIR" -y backup delete "$id" -q >/dev/null
  done
}
shell_backup() {
  tar czf "$base/files.tar.gz" -C "$work/wp" "wp-content/uploads/$DOMAIN" "wp-content/aegir-sites/$DOMAIN.php"
  mariadb-dump --single-transaction --quick "$(db)" | gzip > "$base/db.sql.gz"
}
shell_backup_parallel() {
  tar czf "$base/files.tar.gz" -C "$work/wp" "wp-content/uploads/$DOMAIN" "wp-content/aegir-sites/$DOMAIN.php" &
  mariadb-dump --single-transaction --quick "$(db)" | gzip > "$base/db.sql.gz"
  wait
}
aegir_verify() {
  "$AEGIR" backup verify "$("$AEGIR" backup list --site "$DOMAIN" --format csv --fields id | sed -n 2p)" -q >/dev/null
}
aegir_restore() { "$AEGIR" -y site restore "$DOMAIN" -q >/dev/null; }
shell_restore() {
  rm -rf "$uploads" "$work/wp/wp-content/aegir-sites/$DOMAIN.php"
  tar xzf "$base/files.tar.gz" -C "$work/wp"
  gunzip < "$base/db.sql.gz" | mariadb "$(db)"
}

# time_of FUNCTION: seconds one call takes
time_of() { local s e; s=$(now); "$@"; e=$(now); secs "$s" "$e"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "warming the caches (one run of each, not counted)..."
drop_aegir_backups; aegir_backup; shell_backup; shell_backup_parallel

ab=(); bb=(); sb=(); sp=(); av=(); ar=(); sr=()
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r of $ROUNDS..."
  drop_aegir_backups
  ab+=("$(time_of aegir_backup)")
  if [ -n "${AEGIR_BEFORE:-}" ]; then bb+=("$(time_of before_backup)"); fi
  sb+=("$(time_of shell_backup)")
  sp+=("$(time_of shell_backup_parallel)")
  av+=("$(time_of aegir_verify)")
  ar+=("$(time_of aegir_restore)")
  sr+=("$(time_of shell_restore)")
done
archive=$("$AEGIR" backup list --site "$DOMAIN" --format csv --fields path | tail -1)
aegir_mb=$(( $(stat -c %s "$archive") / 1048576 ))
shell_mb=$(( ($(stat -c %s "$base/files.tar.gz") + $(stat -c %s "$base/db.sql.gz")) / 1048576 ))
AB=$(median "${ab[@]}"); SB=$(median "${sb[@]}"); SP=$(median "${sp[@]}"); AV=$(median "${av[@]}"); AR=$(median "${ar[@]}"); SR=$(median "${sr[@]}")

printf '\nsite: %s files, %s MiB; database dump %s MiB\n' "$files" "$files_mb" "$dump_mb"
printf 'machine: %s cores, %s\n' "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
printf 'median of %s rounds, seconds (each round: %s)\n\n' "$ROUNDS" "aegir backup, shell backup, shell backup in parallel, aegir verify, aegir restore, shell restore"
printf '%-62s %8s %10s\n' "backup" "seconds" "size MiB"
printf '%-62s %8s %10s\n' "aegir site backup" "$AB" "$aegir_mb"
printf '%-62s %8s %10s\n' "tar czf + mariadb-dump | gzip, one after the other" "$SB" "$shell_mb"
printf '%-62s %8s %10s\n' "tar czf + mariadb-dump | gzip, at the same time" "$SP" "$shell_mb"
printf 'aegir is %.1fx as fast as the shell one after the other, %.1fx as fast as at the same time (goal: 1.5x)\n\n' \
  "$(echo "$SB / $AB" | bc -l)" "$(echo "$SP / $AB" | bc -l)"
if [ -n "${AEGIR_BEFORE:-}" ]; then
  BB=$(median "${bb[@]}")
  printf '%-62s %8s\n' "$AEGIR_BEFORE site backup (AEGIR_BEFORE)" "$BB"
  printf 'the shell one after the other against it: %.1fx; all its rounds: %s\n\n' "$(echo "$SB / $BB" | bc -l)" "${bb[*]}"
fi
printf '%-62s %8s\n' "aegir backup verify (every member against the manifest)" "$AV"
printf '\n%-62s %8s\n' "restore" "seconds"
printf '%-62s %8s\n' "aegir site restore (checked, into a new database, swapped in)" "$AR"
printf '%-62s %8s\n' "rm -rf + tar xzf + gunzip | mariadb (over the live site)" "$SR"
printf '\nall rounds: aegir backup %s | shell %s | shell parallel %s | aegir verify %s | aegir restore %s | shell restore %s\n' \
  "${ab[*]}" "${sb[*]}" "${sp[*]}" "${av[*]}" "${ar[*]}" "${sr[*]}"
