<?php
/*
 * aegir: what the WordPress scripts share. WordPress itself must be loaded
 * (require wp-load.php) by the script, in the global scope.
 */

/* Checks PHP and the docroot, and sets up the request for $path of the
 * site at $url. */
function aegir_wp_request($url, $path) {
  aegir_need_extensions('WordPress', array('mysqli'));
  if (!file_exists(getcwd() . '/wp-load.php')) {
    aegir_fail(getcwd() . ' is not a WordPress docroot (no wp-load.php)', 'verify the platform: aegir platform verify');
  }
  aegir_request($url, $path);
}

/* Fails unless WordPress came up through aegir's dispatcher. */
function aegir_wp_dispatched() {
  if (!defined('AEGIR_SITE')) {
    aegir_fail('the platform\'s wp-config.php is not aegir\'s dispatcher', 'verify the platform (aegir platform verify), which puts it in place');
  }
}
