<?php
/*
 * aegir: what the Drupal scripts share: the PHP extensions Drupal needs,
 * a full bootstrap of a site, and Drupal's messages for the task log.
 */

/*
 * Fails unless PHP has the extensions Drupal $major needs, with the PDO
 * driver of $driver ("mysql" or "pgsql"; empty: either). mbstring is only
 * recommended.
 */
function aegir_drupal_extensions($major, $driver) {
  $pdo = array('pdo_mysql', 'pdo_pgsql');
  if ($driver === 'mysql' || $driver === 'pgsql') {
    $pdo = 'pdo_' . $driver;
  }
  $required = array('dom', 'gd', 'pdo', $pdo, 'SimpleXML', 'xml');
  if ($major >= 8) {
    $required[] = 'tokenizer';
  }
  aegir_need_extensions('Drupal ' . $major, $required, array('mbstring'));
}

/* Sets up $_SERVER as a request for $script of the site at $url, as
 * Drupal's own shell scripts do: SERVER_SOFTWARE is there but NULL, so
 * that Drupal knows it runs from the command line and code that reads it
 * finds no undefined key. */
function aegir_drupal_request($url, $script) {
  aegir_request($url, $script);
  $_SERVER['SERVER_SOFTWARE'] = NULL;
}

/* Boots a site fully, as a request for index.php does. */
function aegir_drupal_boot($root, $major) {
  if ($major == 7) {
    if (!file_exists($root . '/includes/bootstrap.inc')) {
      aegir_fail($root . ' is not a Drupal 7 docroot (no includes/bootstrap.inc)', 'verify the platform: aegir platform verify');
    }
    define('DRUPAL_ROOT', $root);
    require_once DRUPAL_ROOT . '/includes/bootstrap.inc';
    drupal_bootstrap(DRUPAL_BOOTSTRAP_FULL);
    return;
  }
  $class_loader = aegir_drupal_autoload($root);
  $request = \Symfony\Component\HttpFoundation\Request::createFromGlobals();
  $kernel = \Drupal\Core\DrupalKernel::createFromRequest($request, $class_loader, 'prod', TRUE, $root);
  $kernel->boot();
  $kernel->preHandle($request);
}

/* The class loader of a Drupal 8+ docroot. */
function aegir_drupal_autoload($root) {
  if (!file_exists($root . '/autoload.php')) {
    aegir_fail($root . ' is not a Drupal 8+ docroot (no autoload.php)', 'verify the platform, and run composer install in a Composer project');
  }
  return require $root . '/autoload.php';
}

/* Sends the messages Drupal set for the user to the task log. (They live
 * in the session, which a command line run may lack: then there are
 * none.) */
function aegir_drupal_messages($major) {
  $all = array();
  try {
    if ($major == 7 && function_exists('drupal_get_messages')) {
      $all = drupal_get_messages();
    }
    elseif ($major > 7 && class_exists('\Drupal', FALSE) && method_exists('\Drupal', 'messenger')) {
      $all = \Drupal::messenger()->deleteAll();
    }
  }
  catch (Throwable $e) {
    aegir_log('debug', 'Drupal\'s messages could not be read: ' . aegir_throwable($e));
  }
  foreach ((array) $all as $type => $messages) {
    foreach ((array) $messages as $message) {
      aegir_log($type === 'status' ? 'info' : 'warning', 'Drupal: ' . aegir_text($message));
    }
  }
}
