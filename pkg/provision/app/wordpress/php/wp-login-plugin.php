<?php
/*
 * Plugin Name: aegir one-time login
 * Description: Logs a site's administrator in through a one-time link made by "aegir site login-reset DOMAIN". Written by aegir; do not edit: aegir writes it again on every verify.
 *
 * A link is /wp-login.php?action=aegir-login#token=TOKEN. aegir makes the
 * token; the site keeps only its SHA-256, in the user meta
 * aegir_login_token ("EXPIRES:HASH", EXPIRES a Unix time) of the user it
 * logs in. The token is in the link's fragment, which a browser never
 * sends: no access log, proxy or Referer sees it. Opening the link (GET)
 * shows a page with a "Log in" button and changes nothing, as mail
 * scanners and chat link previews fetch links before the person does;
 * the page's script takes the token from the fragment into its form, and
 * the button posts it. The first POST that shows a token uses it up,
 * whatever happens next; an unknown, used or expired token gets a 403
 * page and no login.
 */

if (!defined('ABSPATH')) {
  exit;
}

define('AEGIR_LOGIN_PLUGIN', 1);
define('AEGIR_LOGIN_META', 'aegir_login_token');

add_action('login_form_aegir-login', 'aegir_login_link');

/* A GET shows the page that asks to log in; a POST uses up its token and
 * logs its user in, or refuses. */
function aegir_login_link() {
  if (!isset($_SERVER['REQUEST_METHOD']) || $_SERVER['REQUEST_METHOD'] !== 'POST') {
    aegir_login_ask();
  }
  $token = isset($_POST['token']) && is_string($_POST['token']) ? wp_unslash($_POST['token']) : '';
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

/* The page a link opens: a "Log in" button whose form gets the token
 * from the link's fragment (then gone from the address bar and the
 * history), and posts it to this site only. */
function aegir_login_ask() {
  header('Referrer-Policy: no-referrer');
  header('X-Robots-Tag: noindex, nofollow');
  login_header('Log in with a one-time link', '<p class="message">' . esc_html(
    'This link logs you in once, as the account it was made for.') . '</p>');
  echo '<form name="aegir-login" id="aegir-login-form" method="post" action="' . esc_url(site_url('wp-login.php?action=aegir-login', 'login_post')) . '">'
    . '<input type="hidden" name="token" id="aegir-login-token" value="" />'
    . '<p class="submit"><input type="submit" name="wp-submit" id="wp-submit" class="button button-primary button-large" value="Log in" /></p>'
    . '</form>'
    . '<noscript><p>' . esc_html('This page needs JavaScript to read the link.') . '</p></noscript>'
    . "<script>\n"
    . "(function () {\n"
    . "  var m = /^#token=([A-Za-z0-9_-]{43})$/.exec(window.location.hash);\n"
    . "  if (m) {\n"
    . "    document.getElementById('aegir-login-token').value = m[1];\n"
    . "    window.history.replaceState(null, '', window.location.pathname + window.location.search);\n"
    . "  }\n"
    . "})();\n"
    . "</script>";
  login_footer();
  exit;
}

/* A 403 page that says why, and no login. */
function aegir_login_refuse($why) {
  $site = defined('AEGIR_SITE') ? AEGIR_SITE : (string) wp_parse_url(home_url(), PHP_URL_HOST);
  wp_die('<p>' . esc_html($why) . '</p><p>' . esc_html('Ask for a new one: aegir site login-reset ' . $site) . '</p>',
    'Login link refused', array('response' => 403));
}
