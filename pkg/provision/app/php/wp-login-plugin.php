<?php
/*
 * Plugin Name: aegir one-time login
 * Description: Logs a site's administrator in through a one-time link made by "aegir site login-reset DOMAIN". Written by aegir; do not edit: aegir writes it again on every verify.
 *
 * A link is /wp-login.php?action=aegir-login&token=TOKEN. aegir makes the
 * token; the site keeps only its SHA-256, in the user meta
 * aegir_login_token ("EXPIRES:HASH", EXPIRES a Unix time) of the user it
 * logs in. The first request that shows a token uses it up, whatever
 * happens next; an unknown, used or expired token gets a 403 page and no
 * login.
 */

if (!defined('ABSPATH')) {
  exit;
}

define('AEGIR_LOGIN_PLUGIN', 1);
define('AEGIR_LOGIN_META', 'aegir_login_token');

add_action('login_form_aegir-login', 'aegir_login_link');

/* Uses up the request's token and logs its user in, or refuses. */
function aegir_login_link() {
  $token = isset($_GET['token']) && is_string($_GET['token']) ? wp_unslash($_GET['token']) : '';
  $row = preg_match('/^[A-Za-z0-9_-]{43}$/', $token) ? aegir_login_take(hash('sha256', $token)) : NULL;
  if (!$row) {
    aegir_login_refuse('This login link is not valid, or it was already used.');
  }
  if ($row['expires'] < time()) {
    aegir_login_refuse('This login link has expired.');
  }
  $user = get_user_by('id', $row['user_id']);
  if (!$user) {
    aegir_login_refuse('The account of this login link no longer exists.');
  }
  // A login ends the user's other links too.
  delete_user_meta($user->ID, AEGIR_LOGIN_META);
  wp_set_current_user($user->ID);
  wp_set_auth_cookie($user->ID, FALSE, is_ssl());
  do_action('wp_login', $user->user_login, $user);
  wp_safe_redirect(admin_url());
  exit;
}

/* Takes the stored token whose hash is $hash out of the database: its
 * user and expiry, or NULL. Of two requests with one token, only the one
 * whose DELETE removes the row gets it. */
function aegir_login_take($hash) {
  global $wpdb;
  $rows = $wpdb->get_results($wpdb->prepare("SELECT umeta_id, user_id, meta_value FROM {$wpdb->usermeta} WHERE meta_key = %s", AEGIR_LOGIN_META));
  foreach ((array) $rows as $r) {
    $parts = explode(':', (string) $r->meta_value, 2);
    if (count($parts) !== 2 || !hash_equals($parts[1], $hash)) {
      continue;
    }
    if (!delete_metadata_by_mid('user', (int) $r->umeta_id)) {
      return NULL;
    }
    return array('user_id' => (int) $r->user_id, 'expires' => (int) $parts[0]);
  }
  return NULL;
}

/* A 403 page that says why, and no login. */
function aegir_login_refuse($why) {
  $site = defined('AEGIR_SITE') ? AEGIR_SITE : (string) wp_parse_url(home_url(), PHP_URL_HOST);
  wp_die('<p>' . esc_html($why) . '</p><p>' . esc_html('Ask for a new one: aegir site login-reset ' . $site) . '</p>',
    'Login link refused', array('response' => 403));
}
