<?php
/*
 * aegir: lists the sites of a Drupal platform (sites/DOMAIN/settings.php,
 * sites/default and sites/all aside) with the database and host names
 * their settings give. Each settings.php is PHP code, so it runs here, as
 * the web server user, each in its own function scope. Input: none.
 */

aegir_input();
$root = getcwd();
define('DRUPAL_ROOT', $root);

/* Includes one site's settings.php as Drupal would and returns what it set. */
function aegir_read_settings($app_root, $site_path) {
  $databases = array();
  $settings = array();
  $conf = array();
  $config = array();
  include $app_root . '/' . $site_path . '/settings.php';
  return array(
    'db' => isset($databases['default']['default']) ? $databases['default']['default'] : NULL,
    'trusted' => isset($settings['trusted_host_patterns']) ? array_values($settings['trusted_host_patterns']) : array(),
  );
}

/* The aliases of sites.php: alias => site directory. */
function aegir_read_sites_php($root) {
  $sites = array();
  if (is_file($root . '/sites/sites.php')) {
    include $root . '/sites/sites.php';
  }
  return $sites;
}

$by_dir = array();
foreach (aegir_read_sites_php($root) as $alias => $dir) {
  $by_dir[$dir][] = (string) $alias;
}
$found = array();
foreach (glob('sites/*/settings.php') as $file) {
  $dir = basename(dirname($file));
  if ($dir === 'default' || $dir === 'all') {
    continue;
  }
  $read = aegir_read_settings($root, 'sites/' . $dir);
  $found[] = array(
    'dir' => $dir,
    'aegir' => strpos(file_get_contents($file), 'written by aegir') !== FALSE,
    'aliases' => isset($by_dir[$dir]) ? $by_dir[$dir] : array(),
    'trusted' => $read['trusted'],
    'db' => $read['db'],
  );
}
aegir_result(array('sites' => $found));
