<?php
/*
 * aegir: boots a Drupal 7 or 8+ site fully, as drush does, and does one
 * operation on it. Input: major, url, op, and for op "login" uid.
 *   login:  a one-time login link for the account (user 1 by default)
 *   status: core version, install profile, and every module and theme
 *           with its enabled state and schema version
 */

$in = aegir_input();
$root = getcwd();
$major = (int) $in['major'];
aegir_request($in['url'], '/index.php');

try {
  if ($major == 7) {
    if (!file_exists($root . '/includes/bootstrap.inc')) {
      aegir_fail($root . ' is not a Drupal 7 docroot (no includes/bootstrap.inc)', 'verify the platform: aegir platform verify');
    }
    define('DRUPAL_ROOT', $root);
    require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
    drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
  }
  else {
    if (!file_exists($root . '/autoload.php')) {
      aegir_fail($root . ' is not a Drupal 8+ docroot (no autoload.php)', 'verify the platform, and run composer install in a Composer project');
    }
    $class_loader = require $root . '/autoload.php';
    $request = \Symfony\Component\HttpFoundation\Request::createFromGlobals();
    $kernel = \Drupal\Core\DrupalKernel::createFromRequest($request, $class_loader, 'prod', TRUE, $root);
    $kernel->boot();
    $kernel->preHandle($request);
  }

  switch ($in['op']) {
    case 'login':
      $uid = empty($in['uid']) ? 1 : (int) $in['uid'];
      $account = $major == 7 ? user_load($uid) : \Drupal\user\Entity\User::load($uid);
      if (!$account) {
        aegir_fail('the site has no user ' . $uid, 'check the user id');
      }
      aegir_result(array('url' => user_pass_reset_url($account) . '/login'));
      break;

    case 'status':
      $extensions = array();
      if ($major == 7) {
        $version = VERSION;
        $profile = variable_get('install_profile', 'standard');
        foreach (db_query('SELECT name, type, status, schema_version FROM {system}') as $row) {
          $type = ($row->name === $profile && $row->type === 'module') ? 'profile' : $row->type;
          $extensions[] = array('name' => $row->name, 'type' => $type, 'enabled' => (bool) $row->status, 'schema' => (string) $row->schema_version);
        }
      }
      else {
        $version = \Drupal::VERSION;
        $core = \Drupal::config('core.extension');
        $profile = (string) $core->get('profile');
        $schema = \Drupal::keyValue('system.schema')->getAll();
        foreach ((array) $core->get('module') as $name => $weight) {
          $extensions[] = array('name' => $name, 'type' => $name === $profile ? 'profile' : 'module', 'enabled' => TRUE,
            'schema' => isset($schema[$name]) ? (string) $schema[$name] : '');
        }
        foreach ((array) $core->get('theme') as $name => $weight) {
          $extensions[] = array('name' => $name, 'type' => 'theme', 'enabled' => TRUE, 'schema' => '');
        }
      }
      aegir_result(array('version' => $version, 'profile' => $profile, 'extensions' => $extensions));
      break;

    default:
      aegir_fail('unknown operation ' . $in['op']);
  }
}
catch (Throwable $e) {
  aegir_fail('Drupal failed: ' . $e->getMessage(), '');
}
