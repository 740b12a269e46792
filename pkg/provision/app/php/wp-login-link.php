<?php
/*
 * aegir: makes a one-time password reset link for a WordPress site's
 * administrator. Input: url, user (a login name; empty: the first
 * administrator).
 */

$in = aegir_input();
aegir_wp_request($in['url'], '/wp-login.php');
require getcwd() . '/wp-load.php';

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
$key = get_password_reset_key($user);
if (is_wp_error($key)) {
  aegir_fail('could not make a password reset key: ' . $key->get_error_message());
}
$url = network_site_url('wp-login.php?action=rp&key=' . $key . '&login=' . rawurlencode($user->user_login), 'login');
aegir_result(array('url' => $url, 'user' => $user->user_login));
