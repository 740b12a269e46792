<?php
/*
 * aegir: runs a Drupal site's pending database updates in one process, as
 * update.php and drush updatedb do. Drupal 7: the site is prepared as
 * update.php prepares it, and Drupal's own update_batch() runs with a
 * batch that is not progressive (no browser round trips). Drupal 8+: the
 * update kernel boots, then each pending hook_update_N() (Drupal's
 * update_do_one()) and each pending hook_post_update_NAME()
 * (update_invoke_post_update(), after a cache rebuild) runs, as a batch
 * would run them. The site is in maintenance mode meanwhile and comes back
 * as it was; caches are rebuilt at the end, with updates or without.
 *
 * Every update gets one log line: applied (with the message the update
 * returned), failed (with Drupal's message), skipped (its dependencies are
 * missing) or not run (an update it depends on failed). A failed update
 * fails the step. Input: major, url, db_driver.
 */

$in = aegir_input();
$root = getcwd();
$major = (int) $in['major'];
aegir_drupal_extensions($major, isset($in['db_driver']) ? $in['db_driver'] : '');
aegir_drupal_request($in['url'], '/update.php');

/* The requirements Drupal checks before updates: errors stop the step,
 * warnings go to the task log. */
function aegir_update_requirements($requirements) {
  $errors = array();
  foreach ((array) $requirements as $r) {
    $severity = isset($r['severity']) ? $r['severity'] : 0;
    if ($severity instanceof \BackedEnum) {
      $severity = $severity->value;
    }
    $text = aegir_text(isset($r['title']) ? $r['title'] : '');
    foreach (array('value', 'description') as $k) {
      if (isset($r[$k]) && ($t = aegir_text($r[$k])) !== '') {
        $text .= ($text === '' ? '' : ': ') . $t;
      }
    }
    if ((int) $severity === 2) {
      $errors[] = $text;
    }
    elseif ((int) $severity === 1) {
      aegir_log('warning', 'Drupal requirement: ' . $text);
    }
  }
  if ($errors) {
    aegir_fail('Drupal refuses to run the database updates: ' . implode('; ', $errors), 'fix what Drupal names on the web server, then run the updates again');
  }
}

/* The first pending update of each module (update_get_update_list()), and
 * the descriptions of all. A module whose updates cannot run stops the
 * step. */
function aegir_update_start($list) {
  $start = array();
  $titles = array();
  foreach ($list as $module => $u) {
    if (!isset($u['start'])) {
      aegir_fail('the ' . $module . ' module cannot be updated: ' . aegir_text(isset($u['warning']) ? $u['warning'] : 'Drupal gives no reason'),
        'update the site step by step through the releases the module names (a platform with each), or remove the module; the site is unchanged');
    }
    if (!empty($u['pending'])) {
      $start[$module] = $u['start'];
      foreach ($u['pending'] as $number => $text) {
        $titles[$module . '_update_' . $number] = trim(preg_replace('/^\d+ - /', '', aegir_text(is_array($text) ? (isset($text['title']) ? $text['title'] : '') : $text)));
      }
    }
  }
  return array($start, $titles);
}

/* The plan: one entry per update in the order they run. */
function aegir_update_plan($resolved, $titles) {
  $plan = array();
  foreach ($resolved as $function => $u) {
    $plan[] = array(
      'kind' => 'update',
      'module' => $u['module'],
      'name' => (string) $u['number'],
      'function' => $function,
      'title' => isset($titles[$function]) ? $titles[$function] : '',
      'allowed' => !empty($u['allowed']),
      'missing' => isset($u['missing_dependencies']) ? array_values((array) $u['missing_dependencies']) : array(),
      'dependencies' => !empty($u['reverse_paths']) ? array_keys($u['reverse_paths']) : array(),
    );
  }
  return $plan;
}

/*
 * The outcome of one update from the batch results ($results[MODULE][NAME]
 * as update_do_one() leaves them), logged on one line. $error is the
 * message of a failure that escaped the update's own error handling.
 */
function aegir_update_outcome($u, $results, $error = NULL) {
  $r = isset($results[$u['module']][$u['name']]) ? $results[$u['module']][$u['name']] : NULL;
  $message = '';
  if (!$u['allowed']) {
    $status = 'skipped';
    $message = $u['missing'] ? 'its dependencies are missing: ' . implode(', ', $u['missing']) : 'the module\'s update code has an error';
  }
  elseif ($error !== NULL) {
    $status = 'failed';
    $message = $error;
  }
  elseif (is_array($r) && !empty($r['#abort'])) {
    $status = 'failed';
    $message = aegir_text(isset($r['#abort']['query']) ? $r['#abort']['query'] : 'no reason given');
  }
  elseif (is_array($r)) {
    $status = 'applied';
    $q = isset($r['results']['query']) ? $r['results']['query'] : '';
    $message = (is_string($q) || is_object($q)) ? aegir_text($q) : '';
  }
  else {
    $status = 'not run';
    $message = 'an update before it failed';
  }
  $what = $u['function'] . ($u['title'] !== '' ? ' (' . $u['title'] . ')' : '');
  $levels = array('applied' => 'info', 'failed' => 'error', 'skipped' => 'warning', 'not run' => 'warning');
  aegir_log($levels[$status], 'update ' . $what . ': ' . $status . ($message !== '' ? ': ' . substr($message, 0, 1000) : ''));
  return array('kind' => $u['kind'], 'module' => $u['module'], 'name' => $u['name'], 'function' => $u['function'], 'status' => $status, 'message' => $message);
}

/* Answers with the outcomes, or fails with the first failed update (or
 * with $error, a failure outside any update). */
function aegir_update_answer($outcomes, $started, $error = NULL) {
  foreach ($outcomes as $o) {
    if ($o['status'] === 'failed') {
      aegir_fail('database update ' . $o['function'] . ' failed: ' . $o['message'],
        'fix the cause (the update\'s message above, the site\'s log), then run the updates again: the updates applied before it are recorded and do not run twice');
    }
  }
  if ($error !== NULL) {
    aegir_fail('the database updates stopped: ' . $error, '');
  }
  if (!$outcomes) {
    aegir_log('info', 'no pending database updates');
  }
  aegir_result(array('updates' => $outcomes, 'seconds' => round(microtime(TRUE) - $started, 2)));
}

/* Drupal 7, as update.php. */
function aegir_update_7($root) {
  if (!file_exists($root . '/includes/update.inc')) {
    aegir_fail($root . ' is not a Drupal 7 docroot (no includes/update.inc)', 'verify the platform: aegir platform verify');
  }
  define('DRUPAL_ROOT', $root);
  define('MAINTENANCE_MODE', 'update');
  foreach (array('bootstrap', 'update', 'common', 'file', 'entity', 'unicode') as $inc) {
    require_once DRUPAL_ROOT . '/includes/' . $inc . '.inc';
  }
  update_prepare_d7_bootstrap();
  // The site's time zone while the session starts, as update.php does.
  $timezones = variable_get('configurable_timezones', 1);
  $GLOBALS['conf']['configurable_timezones'] = 0;
  drupal_bootstrap(DRUPAL_BOOTSTRAP_SESSION);
  $GLOBALS['conf']['configurable_timezones'] = $timezones;
  drupal_save_session(FALSE);
  drupal_bootstrap(DRUPAL_BOOTSTRAP_LANGUAGE);
  update_fix_d7_requirements();
  drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
  drupal_maintenance_theme();
  require_once DRUPAL_ROOT . '/includes/install.inc';
  require_once DRUPAL_ROOT . '/includes/batch.inc';
  drupal_load_updates();
  update_fix_compatibility();
  aegir_update_requirements(module_invoke_all('requirements', 'update') + update_extra_requirements());

  $started = microtime(TRUE);
  list($start, $titles) = aegir_update_start(update_get_update_list());
  if (!$start) {
    drupal_flush_all_caches();
    aegir_drupal_messages(7);
    aegir_update_answer(array(), $started);
    return;
  }
  $plan = aegir_update_plan(update_resolve_dependencies($start), $titles);

  // A batch that runs at once, in this process, to its end.
  $batch =& batch_get();
  $batch = array('sets' => array(), 'has_form_submits' => FALSE, 'progressive' => FALSE);
  unset($batch);
  $report = function ($error = NULL) use ($plan) {
    $results = isset($_SESSION['update_results']) ? $_SESSION['update_results'] : array();
    $current = NULL;
    $batch = batch_get();
    if (isset($batch['sets'][0])) {
      // Stopped inside the batch: its results so far, and the update it ran.
      $results = $batch['sets'][0]['results'];
      $queue = _batch_queue($batch['sets'][0]);
      $left = $queue ? $queue->getAllItems() : array();
      if ($left) {
        $current = $left[0][1][0] . '_update_' . $left[0][1][1];
      }
    }
    $outcomes = array();
    foreach ($plan as $u) {
      $outcomes[] = aegir_update_outcome($u, $results, $u['function'] === $current ? $error : NULL);
    }
    return $outcomes;
  };
  $GLOBALS['aegir_on_stop'] = function ($error) use ($report) {
    $report($error);
    if (isset($_SESSION['maintenance_mode']) && !$_SESSION['maintenance_mode']) {
      aegir_log('warning', 'the site stays in maintenance mode; once its updates are done, put it online again at admin/config/development/maintenance');
    }
  };
  try {
    update_batch($start);
  }
  catch (Throwable $e) {
    $GLOBALS['aegir_on_stop'] = NULL;
    $error = aegir_throwable($e);
    $outcomes = $report($error);
    // update_finished() did not run: the site comes back online.
    if (isset($_SESSION['maintenance_mode']) && !$_SESSION['maintenance_mode']) {
      variable_set('maintenance_mode', FALSE);
    }
    aegir_update_answer($outcomes, $started, $error);
  }
  $GLOBALS['aegir_on_stop'] = NULL;
  $outcomes = $report();
  aegir_drupal_messages(7);
  aegir_update_answer($outcomes, $started);
}

/* update_extra_requirements() is update.php's: update.inc calls it for a
 * Drupal 6 settings.php. */
if (!function_exists('update_extra_requirements')) {
  function update_extra_requirements($requirements = NULL) {
    static $extra = array();
    if (isset($requirements)) {
      $extra += $requirements;
    }
    return $extra;
  }
}

/* Drupal 8+, as drush updatedb. */
function aegir_update_8($root) {
  $class_loader = aegir_drupal_autoload($root);
  $request = \Symfony\Component\HttpFoundation\Request::createFromGlobals();
  $kernel = \Drupal\Core\Update\UpdateKernel::createFromRequest($request, $class_loader, 'prod', TRUE, $root);
  $kernel->boot();
  $kernel->preHandle($request);
  require_once $root . '/core/includes/install.inc';
  require_once $root . '/core/includes/update.inc';
  drupal_load_updates();
  if (function_exists('update_fix_compatibility')) {
    update_fix_compatibility();
  }
  if (function_exists('update_check_requirements')) {
    aegir_update_requirements(update_check_requirements());
  }

  $started = microtime(TRUE);
  list($start, $titles) = aegir_update_start(update_get_update_list());
  $plan = aegir_update_plan($start ? update_resolve_dependencies($start) : array(), $titles);
  $registry = \Drupal::service('update.post_update_registry');
  $info = method_exists($registry, 'getPendingUpdateInformation') ? $registry->getPendingUpdateInformation() : array();
  foreach ($registry->getPendingUpdateFunctions() as $function) {
    list($extension, $name) = explode('_post_update_', $function, 2);
    $plan[] = array('kind' => 'post_update', 'module' => $extension, 'name' => $name, 'function' => $function,
      'title' => isset($info[$extension]['pending'][$name]) ? aegir_text($info[$extension]['pending'][$name]) : '',
      'allowed' => TRUE, 'missing' => array(), 'dependencies' => array());
  }
  if (!$plan) {
    drupal_flush_all_caches();
    aegir_drupal_messages(8);
    aegir_update_answer(array(), $started);
    return;
  }

  $state = \Drupal::state();
  $maintenance = $state->get('system.maintenance_mode');
  if (!$maintenance) {
    $state->set('system.maintenance_mode', TRUE);
  }
  $context = array('sandbox' => array(), 'results' => array(), 'finished' => 1, 'message' => '');
  $outcomes = array();
  $flushed = FALSE;
  $ran = array();
  $error = NULL;
  // The outcomes of the updates not done when the run stops: the first
  // failed with $error, the others not run.
  $rest = function ($error) use (&$plan, &$ran, &$context) {
    $outcomes = array();
    foreach ($plan as $u) {
      if (empty($ran[$u['function']])) {
        $outcomes[] = aegir_update_outcome($u, $context['results'], $error);
        $error = NULL;
      }
    }
    return $outcomes;
  };
  $GLOBALS['aegir_on_stop'] = function ($error) use ($rest, $maintenance) {
    $rest($error);
    if (!$maintenance) {
      aegir_log('warning', 'the site stays in maintenance mode; once its updates are done, put it online again at admin/config/development/maintenance');
    }
  };
  try {
    foreach ($plan as $u) {
      if ($u['allowed'] && $u['kind'] === 'update' && isset($start[$u['module']])) {
        // Updates start at the first pending one, as update.php sets it.
        aegir_set_installed_version($u['module'], (int) $u['name'] - 1);
        unset($start[$u['module']]);
      }
    }
    foreach ($plan as $u) {
      if ($u['allowed'] && $u['kind'] === 'post_update' && !$flushed) {
        // Post updates run on rebuilt caches.
        $flushed = TRUE;
        drupal_flush_all_caches();
      }
      if ($u['allowed']) {
        $context['sandbox'] = array();
        do {
          $context['finished'] = 1;
          if ($u['kind'] === 'update') {
            update_do_one($u['module'], (int) $u['name'], $u['dependencies'], $context);
          }
          else {
            update_invoke_post_update($u['function'], $context);
          }
        } while ($context['finished'] < 1);
      }
      $ran[$u['function']] = TRUE;
      $outcomes[] = aegir_update_outcome($u, $context['results']);
    }
  }
  catch (Throwable $e) {
    $error = aegir_throwable($e);
    $outcomes = array_merge($outcomes, $rest($error));
  }
  $GLOBALS['aegir_on_stop'] = NULL;
  if (!$maintenance) {
    $state->set('system.maintenance_mode', FALSE);
  }
  try {
    drupal_flush_all_caches();
  }
  catch (Throwable $e) {
    aegir_log('warning', 'Drupal could not rebuild its caches after the updates: ' . aegir_throwable($e));
  }
  aegir_drupal_messages(8);
  aegir_update_answer($outcomes, $started, $error);
}

/* Records a module's installed schema version (the update hook registry
 * of Drupal 9.3+, or the older function). */
function aegir_set_installed_version($module, $version) {
  if (\Drupal::hasService('update.update_hook_registry')) {
    \Drupal::service('update.update_hook_registry')->setInstalledVersion($module, $version);
  }
  else {
    drupal_set_installed_schema_version($module, $version);
  }
}

try {
  if ($major == 7) {
    aegir_update_7($root);
  }
  else {
    aegir_update_8($root);
  }
}
catch (Throwable $e) {
  aegir_fail('Drupal failed before the updates ran: ' . aegir_throwable($e), '');
}
