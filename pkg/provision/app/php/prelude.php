<?php
/*
 * aegir: one step of a site's application, run by php-cli in the
 * platform's docroot. Its settings come as JSON on standard input (never
 * on the command line, where ps would show passwords). It answers with one
 * line on standard output, "MARKER-RESULT {json}" or "MARKER-ERROR {json}",
 * where MARKER is the "marker" of the input; everything the application
 * prints goes to standard error, for the task log. It exits 0 only when
 * the step finished.
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

function aegir_answer($kind, $data) {
  global $aegir_marker, $aegir_done;
  $aegir_done = TRUE;
  fwrite(STDOUT, "\n" . $aegir_marker . '-' . $kind . ' ' . json_encode($data, JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR) . "\n");
}

/* Reports success with $data and lets the script end. */
function aegir_result($data) {
  aegir_flush();
  aegir_answer('RESULT', $data);
}

/* Reports a failure: what went wrong and what to do, then exits 1. */
function aegir_fail($message, $hint = '') {
  aegir_flush();
  aegir_answer('ERROR', array('message' => $message, 'hint' => $hint));
  exit(1);
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
  // (Drupal 7 then reports errors as text and fails with a status).
  unset($_SERVER['SERVER_SOFTWARE']);
}

/* An application that exits early (WordPress's wp_die(), a fatal error)
 * still gets an answer, and a non-zero status. */
register_shutdown_function(function () {
  global $aegir_done;
  if ($aegir_done) {
    return;
  }
  $out = aegir_flush();
  $err = error_get_last();
  if ($err && in_array($err['type'], array(E_ERROR, E_PARSE, E_CORE_ERROR, E_COMPILE_ERROR, E_USER_ERROR, E_RECOVERABLE_ERROR))) {
    $msg = 'PHP error: ' . $err['message'] . ' in ' . $err['file'] . ' on line ' . $err['line'];
  }
  else {
    $text = preg_replace('#<(script|style|head)\b.*?</\1>#is', '', $out);
    $text = trim(preg_replace('/\s+/', ' ', html_entity_decode(preg_replace('/<[^>]*>/', ' ', $text))));
    $msg = 'the application stopped before the step finished' . ($text !== '' ? ': ' . substr($text, -600) : '');
  }
  aegir_answer('ERROR', array('message' => $msg, 'hint' => ''));
  exit(1);
});

ob_start();
