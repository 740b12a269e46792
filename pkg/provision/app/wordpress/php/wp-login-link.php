<?php
/*
 * aegir: stores a one-time login token for a WordPress site's
 * administrator, for aegir's login plugin (wp-login-plugin.php) to take.
 * Input: url, user (a login name; empty: the first administrator),
 * token_hash (the SHA-256 of the token, in hex: the token itself never
 * comes here), ttl (seconds the token is good for). Tokens past their
 * expiry are removed.
 */

$in = aegir_input();
aegir_wp_request($in['url'], '/wp-login.php');
require getcwd() . '/wp-load.php';
aegir_wp_dispatched();

if (!defined('AEGIR_LOGIN_PLUGIN')) {
  aegir_fail('aegir\'s login plugin is not loaded: WordPress looks for must-use plugins in ' . WPMU_PLUGIN_DIR . ', which lacks aegir-login.php',
    'verify the site, which puts it in place: aegir site verify ' . AEGIR_SITE);
}
$hash = isset($in['token_hash']) ? (string) $in['token_hash'] : '';
$ttl = isset($in['ttl']) ? (int) $in['ttl'] : 0;
if (!preg_match('/^[0-9a-f]{64}$/', $hash) || $ttl <= 0) {
  aegir_fail('the login token\'s hash or lifetime is missing or malformed');
}
if (!empty($in['user'])) {
  $user = get_user_by('login', $in['user']);
}
else {
  $admins = get_users(array('role' => 'administrator', 'orderby' => 'ID', 'order' => 'ASC', 'number' => 1));
  $user = $admins ? $admins[0] : FALSE;
}
if (!$user) {
  aegir_fail('no such user: ' . (empty($in['user']) ? 'no administrator' : $in['user']), 'check the user name');
}

global $wpdb;
$now = time();
$rows = $wpdb->get_results($wpdb->prepare("SELECT umeta_id, meta_value FROM {$wpdb->usermeta} WHERE meta_key = %s", AEGIR_LOGIN_META));
foreach ((array) $rows as $r) {
  if ((int) strtok((string) $r->meta_value, ':') < $now) {
    delete_metadata_by_mid('user', (int) $r->umeta_id);
  }
}
$expires = $now + $ttl;
if (!add_user_meta($user->ID, AEGIR_LOGIN_META, $expires . ':' . $hash)) {
  aegir_fail('could not store the login token in the database ' . DB_NAME);
}
aegir_result(array(
  'url' => network_site_url('wp-login.php?action=aegir-login', 'login'),
  'user' => $user->user_login,
  'expires' => $expires,
));
