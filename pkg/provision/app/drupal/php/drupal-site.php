<?php
/*
 * aegir: boots a Drupal 7 or 8+ site fully, as drush does, and does one
 * operation on it. Input: major, url, db_driver (mysql, pgsql or empty),
 * op, and for op "login" uid.
 *   login:  a one-time login link for the account (user 1 by default)
 *   status: core version, install profile, and every module and theme
 *           with its enabled state and schema version
 *   cron:   the site's cron run (drupal_cron_run(); 8+: the cron service)
 */

$in = aegir_input();
$root = getcwd();
$major = (int) $in['major'];
aegir_drupal_extensions($major, isset($in['db_driver']) ? $in['db_driver'] : '');
aegir_drupal_request($in['url'], '/index.php');

try {
  aegir_drupal_boot($root, $major);

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

    case 'cron':
      $started = microtime(TRUE);
      $ran = $major == 7 ? drupal_cron_run() : \Drupal::service('cron')->run();
      aegir_drupal_messages($major);
      if (!$ran) {
        aegir_fail('Drupal did not run cron: another cron run of the site holds its lock',
          'wait for the other run to end (the lock of a run that crashed expires within 15 minutes), then run cron again');
      }
      aegir_result(array('seconds' => round(microtime(TRUE) - $started, 2)));
      break;

    default:
      aegir_fail('unknown operation ' . $in['op']);
  }
}
catch (Throwable $e) {
  aegir_fail('Drupal failed: ' . aegir_throwable($e), '');
}
