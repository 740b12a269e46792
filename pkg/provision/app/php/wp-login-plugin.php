<?php
/*
 * Plugin Name: aegir one-time login
 * Description: Logs a site's administrator in through a one-time link made by "aegir site login-reset DOMAIN". Written by aegir; do not edit: aegir writes it again on every verify.
 *
 * A link is /wp-login.php?action=aegir-login&token=TOKEN. aegir makes the
 * token; the site keeps only its SHA-256, in the user meta
 * aegir_login_token ("EXPIRES:HASH", EXPIRES a Unix time) of the user it
 * logs in. Opening the link (GET) only shows a page with a "Log in"
 * button: mail scanners and chat link previews fetch links before the
 * person does, and must neither use the link up nor get logged in. The
 * button posts the token; the first POST that shows it uses it up,
 * whatever happens next. An unknown, used or expired token gets a 403
 * page and no login.
 */

if (!defined('ABSPATH')) {
  exit;
}

define('AEGIR_LOGIN_PLUGIN', 1);
define('AEGIR_LOGIN_META', 'aegir_login_token');

add_action('login_form_aegir-login', 'aegir_login_link');

/* A GET shows the page that asks to log in; a POST uses up the request's
 * token and logs its user in. Either refuses a bad token. */
function aegir_login_link() {
  $post = isset($_SERVER['REQUEST_METHOD']) && $_SERVER['REQUEST_METHOD'] === 'POST';
  $from = $post ? $_POST : $_GET;
  $token = isset($from['token']) && is_string($from['token']) ? wp_unslash($from['token']) : '';
  $hash = preg_match('/^[A-Za-z0-9_-]{43}$/', $token) ? hash('sha256', $token) : '';
  $row = $hash === '' ? NULL : aegir_login_find($hash);
  if ($row && ($post || $row['expires'] < time()) && !delete_metadata_by_mid('user', $row['mid'])) {
    // Of two requests with one token, only the one whose DELETE removed
    // the row has it.
    $row = NULL;
  }
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
  if (!$post) {
    aegir_login_ask($token, $user, $row['expires']);
  }
  // A login ends the user's other links too.
  delete_user_meta($user->ID, AEGIR_LOGIN_META);
  wp_set_current_user($user->ID);
  wp_set_auth_cookie($user->ID, FALSE, is_ssl());
  do_action('wp_login', $user->user_login, $user);
  wp_safe_redirect(admin_url());
  exit;
}

/* The stored token whose hash is $hash: its row, user and expiry, or
 * NULL. */
function aegir_login_find($hash) {
  global $wpdb;
  $rows = $wpdb->get_results($wpdb->prepare("SELECT umeta_id, user_id, meta_value FROM {$wpdb->usermeta} WHERE meta_key = %s", AEGIR_LOGIN_META));
  foreach ((array) $rows as $r) {
    $parts = explode(':', (string) $r->meta_value, 2);
    if (count($parts) === 2 && hash_equals($parts[1], $hash)) {
      return array('mid' => (int) $r->umeta_id, 'user_id' => (int) $r->user_id, 'expires' => (int) $parts[0]);
    }
  }
  return NULL;
}

/* The page a link opens: who it logs in, until when, and a button that
 * posts the token. The token leaves the page for nowhere but this site. */
function aegir_login_ask($token, $user, $expires) {
  header('Referrer-Policy: no-referrer');
  header('X-Robots-Tag: noindex, nofollow');
  $until = wp_date(get_option('date_format') . ' ' . get_option('time_format'), $expires);
  login_header('Log in with a one-time link', '<p class="message">' . esc_html(sprintf(
    'This link logs you in as %s, once. It can be used until %s.', $user->user_login, $until)) . '</p>');
  echo '<form name="aegir-login" id="aegir-login-form" method="post" action="' . esc_url(site_url('wp-login.php?action=aegir-login', 'login_post')) . '">'
    . '<input type="hidden" name="token" value="' . esc_attr($token) . '" />'
    . '<p class="submit"><input type="submit" name="wp-submit" id="wp-submit" class="button button-primary button-large" value="Log in" /></p>'
    . '</form>';
  login_footer();
  exit;
}

/* A 403 page that says why, and no login. */
function aegir_login_refuse($why) {
  $site = defined('AEGIR_SITE') ? AEGIR_SITE : (string) wp_parse_url(home_url(), PHP_URL_HOST);
  wp_die('<p>' . esc_html($why) . '</p><p>' . esc_html('Ask for a new one: aegir site login-reset ' . $site) . '</p>',
    'Login link refused', array('response' => 403));
}
