<?php
/*
 * aegir WordPress dispatcher, written by aegir as this platform's
 * wp-config.php. Do not edit: aegir writes it again on every verify.
 *
 * One WordPress tree serves many sites. This file takes the host name of
 * the request, finds that site's settings in wp-content/aegir-sites/HOST.php
 * (written by aegir for each site and each alias) and loads them, then
 * WordPress. A host name with no settings gets a 404 and nothing else.
 */

define('AEGIR_WP_DISPATCH', 1);

$aegir_host = isset($_SERVER['HTTP_HOST']) ? (string) $_SERVER['HTTP_HOST'] : '';
$aegir_host = strtolower(rtrim(preg_replace('/:[0-9]*$/', '', $aegir_host), '.'));
$aegir_site = __DIR__ . '/wp-content/aegir-sites/' . $aegir_host . '.php';
if (strlen($aegir_host) > 253
  || !preg_match('/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/', $aegir_host)
  || !is_file($aegir_site)) {
  if (PHP_SAPI === 'cli') {
    $aegir_msg = "no site is configured for host '" . addcslashes($aegir_host, "\0..\37\177..\377") . "' on this platform (no wp-content/aegir-sites/HOST.php)";
    if (function_exists('aegir_fail')) {
      aegir_fail($aegir_msg, "write the site's configuration first: aegir site verify DOMAIN");
    }
    fwrite(STDERR, 'aegir: ' . $aegir_msg . "\n");
    exit(1);
  }
  http_response_code(404);
  header('Content-Type: text/plain; charset=utf-8');
  header('Cache-Control: no-store');
  echo "No site is configured for this host name.\n";
  exit;
}
require $aegir_site;
unset($aegir_host, $aegir_site);

if (!defined('ABSPATH')) {
  define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
