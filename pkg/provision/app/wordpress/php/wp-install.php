<?php
/*
 * aegir: installs a WordPress site through the platform's dispatcher
 * (wp-config.php), as wp-admin/install.php would. Input: url, title,
 * admin_user, admin_email, admin_password, public, language.
 */

$in = aegir_input();
aegir_wp_request($in['url'], '/wp-admin/install.php');
define('WP_INSTALLING', TRUE);

// The new site's mail: there may be no mail transport on the server, and
// the admin gets in through a one-time link, not a mailed password.
function wp_new_blog_notification($blog_title, $blog_url, $user_id, $password) {
}

require getcwd() . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
aegir_wp_dispatched();
if (is_blog_installed()) {
  aegir_fail('WordPress is already installed in database ' . DB_NAME, 'use a new, empty database for the site, or delete the old tables');
}
$r = wp_install($in['title'], $in['admin_user'], $in['admin_email'], empty($in['public']) ? 0 : 1, '', wp_slash($in['admin_password']), isset($in['language']) ? $in['language'] : '');
if (is_wp_error($r)) {
  aegir_fail('WordPress install failed: ' . $r->get_error_message());
}
aegir_result(array('url' => $r['url'], 'user_id' => (int) $r['user_id'], 'site' => AEGIR_SITE));
