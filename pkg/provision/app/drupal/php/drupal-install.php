<?php
/*
 * aegir: installs a Drupal site with Drupal's own installer, as drush's
 * site:install does, for Drupal 7 and 8+. Runs in the docroot; the site's
 * settings.php (with $databases and the hash salt) is written beforehand,
 * so the installer skips its database form. Input: major, url, profile,
 * locale, site_name, site_mail, account_name, account_mail, account_pass,
 * update_status, db {driver, database, username, password, host, port}.
 */

$in = aegir_input();
$root = getcwd();
$major = (int) $in['major'];
aegir_drupal_extensions($major, $in['db']['driver']);
aegir_drupal_request($in['url'], $major == 7 ? '/install.php' : '/core/install.php');

$db = $in['db'];
$driver = $db['driver'];
$spec = array(
  'database' => $db['database'],
  'username' => $db['username'],
  'password' => $db['password'],
  'host' => $db['host'],
  'prefix' => '',
);
if (!empty($db['port'])) {
  $spec['port'] = (string) $db['port'];
}
$account = array(
  'name' => $in['account_name'],
  'mail' => $in['account_mail'],
  'pass' => array('pass1' => $in['account_pass'], 'pass2' => $in['account_pass']),
);
$configure = array(
  'site_name' => $in['site_name'],
  'site_mail' => $in['site_mail'],
  'account' => $account,
  'op' => 'Save and continue',
);
if ($major == 7) {
  // array(1 => 1, 2 => 2) turns update checks and their mail on; NULLs
  // leave them off (FALSE is refused as "an illegal choice").
  $configure['update_status_module'] = empty($in['update_status']) ? array(1 => NULL, 2 => NULL) : array(1 => 1, 2 => 2);
  $configure['clean_url'] = TRUE;
}
else {
  $configure['enable_update_status_module'] = !empty($in['update_status']);
  $configure['enable_update_status_emails'] = !empty($in['update_status']);
}
$settings = array(
  'parameters' => array(
    'profile' => $in['profile'],
    ($major == 7 ? 'locale' : 'langcode') => $in['locale'],
  ),
  'forms' => array(
    'install_settings_form' => array(
      'driver' => $driver,
      $driver => $spec,
      'op' => 'Save and continue',
    ),
    'install_configure_form' => $configure,
  ),
);
unset($in, $db, $spec, $account, $configure);

$started = microtime(TRUE);
try {
  if ($major == 7) {
    if (!file_exists($root . '/includes/install.core.inc')) {
      aegir_fail($root . ' is not a Drupal 7 docroot (no includes/install.core.inc)', 'verify the platform: aegir platform verify');
    }
    define('DRUPAL_ROOT', $root);
    // Without it the installer fails in form.inc on menu_get_item().
    define('MAINTENANCE_MODE', 'install');
    require_once DRUPAL_ROOT . '/includes/install.core.inc';
    install_drupal($settings);
  }
  else {
    if (!file_exists($root . '/autoload.php') || !file_exists($root . '/core/includes/install.core.inc')) {
      aegir_fail($root . ' is not a Drupal 8+ docroot (no autoload.php or core/includes/install.core.inc)', 'verify the platform, and run composer install in a Composer project');
    }
    $class_loader = require $root . '/autoload.php';
    require_once $root . '/core/includes/install.core.inc';
    install_drupal($class_loader, $settings);
  }
}
catch (Throwable $e) {
  aegir_fail('the Drupal installer failed: ' . aegir_throwable($e), '');
}
aegir_result(array('seconds' => round(microtime(TRUE) - $started, 2)));
