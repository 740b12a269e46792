<?php
/*
 * aegir: reads a WordPress site's state: core database version, active
 * plugins and theme. Input: url.
 */

$in = aegir_input();
aegir_wp_request($in['url'], '/index.php');
require getcwd() . '/wp-load.php';

aegir_result(array(
  'version' => $GLOBALS['wp_version'],
  'db_version' => (string) get_option('db_version'),
  'active_plugins' => array_values((array) get_option('active_plugins', array())),
  'template' => (string) get_option('template'),
  'stylesheet' => (string) get_option('stylesheet'),
  'blogname' => (string) get_option('blogname'),
  'upload_dir' => (string) wp_get_upload_dir()['basedir'],
));
