<?php
/*
 * aegir: brings a WordPress site's database up to its platform's
 * WordPress (wp_upgrade(), as wp-admin/upgrade.php does), through the
 * platform's dispatcher. Input: url.
 */

$in = aegir_input();
aegir_wp_request($in['url'], '/wp-admin/upgrade.php');
define('WP_INSTALLING', TRUE);
require getcwd() . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
aegir_wp_dispatched();
if (!is_blog_installed()) {
  aegir_fail('WordPress is not installed in database ' . DB_NAME, 'check the site\'s database (aegir site verify), or restore a backup');
}
$want = (int) $GLOBALS['wp_db_version'];
$from = (int) get_option('db_version');
if ($from > $want) {
  aegir_fail('the site\'s database (db_version ' . $from . ') is newer than WordPress ' . $GLOBALS['wp_version'] . ' of this platform (db_version ' . $want . ')',
    'move the site to a platform with the same or a newer WordPress');
}
if ($from === $want) {
  aegir_log('info', 'the WordPress database is up to date (db_version ' . $want . ', WordPress ' . $GLOBALS['wp_version'] . ')');
}
else {
  wp_upgrade();
  wp_cache_flush();
  $to = (int) get_option('db_version');
  if ($to !== $want) {
    aegir_fail('wp_upgrade() left the database at db_version ' . $to . ', not ' . $want, '');
  }
  aegir_log('info', 'WordPress database upgraded from db_version ' . $from . ' to ' . $to . ' (WordPress ' . $GLOBALS['wp_version'] . ')');
}
aegir_result(array('from' => $from, 'to' => $want, 'version' => $GLOBALS['wp_version']));
