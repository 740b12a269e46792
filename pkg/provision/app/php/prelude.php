<?php
/*
 * aegir: one step of a site's application, run by php-cli in the
 * platform's docroot. Its settings come as JSON on standard input (never
 * on the command line, where ps would show passwords). It answers with one
 * line on standard output, "MARKER-RESULT {json}" or "MARKER-ERROR {json}",
 * where MARKER is the "marker" of the input, after any number of lines
 * "MARKER-LOG {json}" for the task log; everything the application prints
 * goes to standard error, for the task log too. It exits 0 only when the
 * step finished.
 */

error_reporting(E_ALL);
ini_set('display_errors', 'stderr');
ini_set('log_errors', '0');
ini_set('html_errors', '0');

$aegir_marker = 'AEGIR';
$aegir_done = FALSE;

/* The buffered output of the application, sent to standard error. */
function aegir_flush() {
  $out = '';
  while (ob_get_level() > 0) {
    $out .= ob_get_clean();
  }
  if (trim($out) !== '') {
    fwrite(STDERR, rtrim($out) . "\n");
  }
  return $out;
}

/* Writes one marked line on standard output, past the output buffers. */
function aegir_line($kind, $data) {
  global $aegir_marker;
  fwrite(STDOUT, "\n" . $aegir_marker . '-' . $kind . ' ' . json_encode($data, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
}

function aegir_answer($kind, $data) {
  global $aegir_done;
  $aegir_done = TRUE;
  aegir_line($kind, $data);
}

/* One line for the task log, at a level: info, warning or error. */
function aegir_log($level, $message) {
  aegir_line('LOG', array('level' => $level, 'message' => $message));
}

/* The message of an exception or error, with its class and where it was
 * thrown (relative to the docroot). */
function aegir_throwable($e) {
  $file = $e->getFile();
  if (strpos($file, getcwd() . '/') === 0) {
    $file = substr($file, strlen(getcwd()) + 1);
  }
  return $e->getMessage() . ' (' . get_class($e) . ' in ' . $file . ' line ' . $e->getLine() . ')';
}

/* Plain text of what an application made for a browser: HTML, an object
 * that turns into a string (a translated message), or a render array. */
function aegir_text($v) {
  if (is_array($v)) {
    $parts = array();
    foreach ($v as $k => $child) {
      if (!is_string($k) || $k[0] !== '#' || in_array($k, array('#markup', '#plain_text', '#title', '#items'), TRUE)) {
        $parts[] = aegir_text($child);
      }
    }
    $v = implode(' ', $parts);
  }
  elseif (is_object($v)) {
    $v = method_exists($v, '__toString') ? (string) $v : '';
  }
  $v = preg_replace('#<(script|style|head)\b.*?</\1>#is', '', (string) $v);
  // Block elements part words; inline ones (em, a, code) do not.
  $v = preg_replace('#<(br|/?(p|div|li|ul|ol|dl|dt|dd|h[1-6]|table|tr|td|th|pre|blockquote|section|header|footer|body|title))\b[^>]*>#i', ' ', $v);
  return trim(preg_replace('/\s+/', ' ', html_entity_decode(strip_tags($v), ENT_QUOTES, 'UTF-8')));
}

/* Reports success with $data and lets the script end. */
function aegir_result($data) {
  aegir_flush();
  aegir_answer('RESULT', $data);
}

/* Reports a failure: what went wrong and what to do, then exits 1. $code,
 * if given, says what kind of failure it is (missing_extension). */
function aegir_fail($message, $hint = '', $code = '') {
  aegir_flush();
  aegir_answer('ERROR', array('message' => $message, 'hint' => $hint, 'code' => $code));
  exit(1);
}

/*
 * Fails unless PHP has the extensions $app needs: $required lists them, an
 * item being an extension or a list of alternatives. A missing one of
 * $recommended is a warning. Both say which Debian packages bring them.
 */
function aegir_need_extensions($app, $required, $recommended = array()) {
  $version = PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;
  $missing = array();
  $packages = array();
  foreach (array('required' => $required, 'recommended' => $recommended) as $kind => $list) {
    foreach ($list as $item) {
      $alternatives = (array) $item;
      $loaded = FALSE;
      foreach ($alternatives as $ext) {
        $loaded = $loaded || extension_loaded($ext);
      }
      if ($loaded) {
        continue;
      }
      $package = 'php' . $version . '-' . aegir_extension_package($alternatives[0]);
      if ($kind === 'recommended') {
        aegir_log('warning', 'PHP ' . $version . ' (' . PHP_BINARY . ') lacks the ' . $alternatives[0] . ' extension, which ' . $app . ' recommends: apt-get install ' . $package);
        continue;
      }
      $missing[] = implode(' or ', $alternatives);
      $packages[$package] = TRUE;
    }
  }
  if ($missing) {
    aegir_fail('PHP ' . $version . ' (' . PHP_BINARY . ') lacks the extensions ' . $app . ' needs: ' . implode(', ', $missing),
      'install them on the web server: apt-get install ' . implode(' ', array_keys($packages)) . ' (Debian, Ubuntu; elsewhere the same PHP extensions from the system\'s packages), then run the task again',
      'missing_extension');
  }
}

/* The Debian package (php8.2-NAME) that holds a PHP extension. */
function aegir_extension_package($ext) {
  $map = array(
    'dom' => 'xml', 'simplexml' => 'xml', 'xml' => 'xml', 'xmlreader' => 'xml', 'xmlwriter' => 'xml', 'xsl' => 'xml',
    'pdo_mysql' => 'mysql', 'mysqli' => 'mysql', 'mysqlnd' => 'mysql', 'pdo_pgsql' => 'pgsql', 'pgsql' => 'pgsql',
    'pdo_sqlite' => 'sqlite3', 'sqlite3' => 'sqlite3', 'gd' => 'gd', 'mbstring' => 'mbstring', 'curl' => 'curl',
    'intl' => 'intl', 'zip' => 'zip', 'opcache' => 'opcache', 'bcmath' => 'bcmath', 'soap' => 'soap',
  );
  $ext = strtolower($ext);
  return isset($map[$ext]) ? $map[$ext] : 'common';
}

/* Reads the JSON settings from standard input. */
function aegir_input() {
  global $aegir_marker;
  $in = json_decode(stream_get_contents(STDIN), TRUE);
  if (!is_array($in)) {
    aegir_fail('could not read the settings on standard input: ' . json_last_error_msg());
  }
  if (isset($in['marker']) && preg_match('/^[A-Za-z0-9-]+$/', $in['marker'])) {
    $aegir_marker = $in['marker'];
  }
  return $in;
}

/* Sets up $_SERVER as a web request to $url would. */
function aegir_request($url, $script) {
  $u = parse_url($url);
  $host = isset($u['host']) ? $u['host'] : 'localhost';
  // With its port, if any, as a browser sends it: Drupal builds links
  // from it.
  $_SERVER['HTTP_HOST'] = $host . (isset($u['port']) ? ':' . $u['port'] : '');
  $_SERVER['SERVER_NAME'] = $host;
  $_SERVER['SERVER_PORT'] = isset($u['port']) ? $u['port'] : ((isset($u['scheme']) && $u['scheme'] === 'https') ? 443 : 80);
  $_SERVER['REQUEST_URI'] = $script;
  $_SERVER['SCRIPT_NAME'] = $script;
  $_SERVER['PHP_SELF'] = $script;
  $_SERVER['SCRIPT_FILENAME'] = getcwd() . $script;
  $_SERVER['REQUEST_METHOD'] = 'GET';
  $_SERVER['REMOTE_ADDR'] = '127.0.0.1';
  if (isset($u['scheme']) && $u['scheme'] === 'https') {
    $_SERVER['HTTPS'] = 'on';
  }
  // Left unset, the applications know they run from the command line
  // (Drupal 7 then reports errors as text and fails with a status; the
  // Drupal scripts set it to NULL, which Drupal takes the same way).
  unset($_SERVER['SERVER_SOFTWARE']);
}

/* An application that exits early (WordPress's wp_die(), a fatal error)
 * still gets an answer, and a non-zero status. */
/* A script may set $aegir_on_stop to a function that the shutdown handler
 * calls, with the message, after an early exit has been answered (to log
 * what it had done so far). */
$aegir_on_stop = NULL;
register_shutdown_function(function () {
  global $aegir_done, $aegir_on_stop;
  if ($aegir_done) {
    return;
  }
  $out = aegir_flush();
  $err = error_get_last();
  if ($err && in_array($err['type'], array(E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR, E_RECOVERABLE_ERROR))) {
    $msg = 'PHP error: ' . $err['message'] . ' in ' . $err['file'] . ' on line ' . $err['line'];
  }
  else {
    $text = aegir_text($out);
    $msg = 'the application stopped before the step finished' . ($text !== '' ? ': ' . substr($text, -600) : '');
  }
  aegir_answer('ERROR', array('message' => $msg, 'hint' => ''));
  if (is_callable($aegir_on_stop)) {
    call_user_func($aegir_on_stop, $msg);
  }
  exit(1);
});

ob_start();
