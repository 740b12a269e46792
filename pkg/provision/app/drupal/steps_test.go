package drupal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
	"github.com/aegir-project/aegir/pkg/provision/app/internal/apptest"
	aexec "github.com/aegir-project/aegir/pkg/provision/exec"
)

// Stand-in cores for cron and database updates. Their functions keep the
// site's state in rec/state.json, which each test writes first: schema
// versions, variables (maintenance mode), the updates the code holds and
// which one fails and how. Every call is appended to the state's "calls",
// so a test sees what ran, in which order, with what.

// standInLib is what both stand-in cores share: the state, the update
// functions' behaviour, and the update API Drupal 7 and 8+ have in common.
const standInLib = `<?php
function standin_state() {
  return json_decode(file_get_contents(getcwd() . '/rec/state.json'), TRUE);
}
function standin_save($s) {
  file_put_contents(getcwd() . '/rec/state.json', json_encode($s));
}
function standin_call($what) {
  $s = standin_state();
  $s['calls'][] = $what;
  standin_save($s);
}
function standin_get($key, $default = NULL) {
  $s = standin_state();
  return isset($s[$key]) ? $s[$key] : $default;
}
function standin_set($key, $value) {
  $s = standin_state();
  $s[$key] = $value;
  standin_save($s);
}
function standin_refuse() {
  if (standin_get('refuse')) {
    throw new PDOException("SQLSTATE[HY000] [1045] Access denied for user 'site'@'localhost' (using password: YES)");
  }
}
function standin_user() {
  $pw = function_exists('posix_getpwuid') ? posix_getpwuid(posix_geteuid()) : array('name' => '?');
  return $pw['name'];
}

/* What every update function does: records its call; fails when the
 * state says so (an exception, an Error, or a fatal error); takes three
 * passes when it is the multipass one. */
function standin_update($function, &$sandbox) {
  standin_call($function);
  if (standin_get('fail') === $function) {
    switch (standin_get('fail_kind')) {
      case 'error':
        return standin_no_such_function();
      case 'fatal':
        ini_set('memory_limit', '16M');
        $a = str_repeat('x', 64 << 20);
        return;
    }
    throw new Exception("Table 'node_title' doesn't exist & more");
  }
  if (standin_get('multipass') === $function) {
    $sandbox['pass'] = isset($sandbox['pass']) ? $sandbox['pass'] + 1 : 1;
    $sandbox['#finished'] = $sandbox['pass'] / 3;
  }
  return 'Done: <em>' . $function . '</em>';
}

function standin_set_schema($module, $number) {
  $s = standin_state();
  $s['schema'][$module] = (int) $number;
  $s['calls'][] = 'schema ' . $module . ' ' . $number;
  standin_save($s);
}

function update_get_update_list() {
  $s = standin_state();
  $ret = array();
  foreach ($s['updates'] as $u) {
    if ($u['number'] > $s['schema'][$u['module']]) {
      $ret[$u['module']]['pending'][$u['number']] = $u['number'] . ' - ' . $u['title'];
      if (!isset($ret[$u['module']]['start'])) {
        $ret[$u['module']]['start'] = $u['number'];
      }
    }
  }
  if (!empty($s['removed'])) {
    $ret['old'] = array('warning' => '<em>old</em> module can not be updated. Its schema version is 6000.');
  }
  return $ret;
}

function update_resolve_dependencies($start) {
  standin_call('resolve ' . json_encode($start));
  $s = standin_state();
  $ret = array();
  foreach ($s['updates'] as $u) {
    if (!isset($start[$u['module']]) || $u['number'] < $start[$u['module']]) {
      continue;
    }
    $f = $u['module'] . '_update_' . $u['number'];
    $ret[$f] = array('module' => $u['module'], 'number' => $u['number'], 'allowed' => empty($s['missing'][$f]),
      'missing_dependencies' => empty($s['missing'][$f]) ? array() : $s['missing'][$f]);
    if (!empty($s['deps'][$f])) {
      $ret[$f]['reverse_paths'] = array_fill_keys($s['deps'][$f], TRUE);
    }
  }
  return $ret;
}

/* One update, as Drupal runs it in a batch: not when an update it
 * depends on failed; an exception is the update's failure; the schema
 * version is recorded when the update finished. */
function update_do_one($module, $number, $dependency_map, &$context) {
  $function = $module . '_update_' . $number;
  $aborted = isset($context['results']['#abort']) ? $context['results']['#abort'] : array();
  if (array_intersect($aborted, array_merge($dependency_map, array($function)))) {
    return;
  }
  $ret = array();
  try {
    $ret['results'] = array('query' => $function($context['sandbox']), 'success' => TRUE);
  }
  catch (Exception $e) {
    $ret['#abort'] = array('success' => FALSE, 'query' => '<em class="placeholder">' . get_class($e) . '</em>: ' . htmlspecialchars($e->getMessage(), ENT_QUOTES) . ' in <em>' . $function . '()</em>');
  }
  if (isset($context['sandbox']['#finished'])) {
    $context['finished'] = $context['sandbox']['#finished'];
    unset($context['sandbox']['#finished']);
  }
  $context['results'][$module][$number] = $ret;
  if (isset($ret['#abort'])) {
    $context['results']['#abort'][] = $function;
  }
  elseif ($context['finished'] >= 1) {
    standin_set_schema($module, $number);
  }
}

function drupal_flush_all_caches() {
  standin_call('flush caches');
}
`

// standInUpdateFunctions defines the update functions the state of a test
// names (they must exist as PHP functions).
func standInUpdateFunctions(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "function %s(&$sandbox) {\n  return standin_update(__FUNCTION__, $sandbox);\n}\n", n)
	}
	return b.String()
}

// standInCore7 is a Drupal 7 core as update.php and cron need it.
func standInCore7() map[string]string {
	return map[string]string{
		"standin.php": standInLib,
		"includes/bootstrap.inc": `<?php
require_once DRUPAL_ROOT . '/standin.php';
define('VERSION', '7.105');
define('DRUPAL_BOOTSTRAP_CONFIGURATION', 0);
define('DRUPAL_BOOTSTRAP_DATABASE', 2);
define('DRUPAL_BOOTSTRAP_SESSION', 4);
define('DRUPAL_BOOTSTRAP_LANGUAGE', 6);
define('DRUPAL_BOOTSTRAP_FULL', 7);
function drupal_bootstrap($phase) {
  standin_refuse();
  standin_call('bootstrap ' . $phase . (defined('MAINTENANCE_MODE') ? ' ' . MAINTENANCE_MODE : '') . ' host ' . $_SERVER['HTTP_HOST']);
}
function variable_get($name, $default = NULL) {
  $v = standin_get('variables', array());
  return isset($v[$name]) ? $v[$name] : $default;
}
function variable_set($name, $value) {
  $s = standin_state();
  $s['variables'][$name] = $value;
  $s['calls'][] = 'variable_set ' . $name . ' ' . json_encode($value);
  standin_save($s);
}
function drupal_save_session($status = NULL) {
  if ($status !== NULL) {
    standin_call('save session ' . json_encode($status));
  }
  return FALSE;
}
function drupal_cron_run() {
  standin_call('cron as ' . standin_user());
  $s = standin_state();
  $s['messages']['status'][] = 'Cron ran <em>fine</em>.';
  standin_save($s);
  return !standin_get('cron_locked');
}
function drupal_get_messages() {
  $m = standin_get('messages', array());
  standin_set('messages', array());
  return $m;
}
`,
		"includes/update.inc": `<?php
function update_prepare_d7_bootstrap() {
  standin_call('prepare ' . MAINTENANCE_MODE);
  drupal_bootstrap(DRUPAL_BOOTSTRAP_DATABASE);
}
function update_fix_d7_requirements() {
  standin_call('fix d7 requirements');
}
function update_fix_compatibility() {
  standin_call('fix compatibility');
}
function update_batch($start, $redirect = NULL, $url = NULL, $batch = array(), $redirect_callback = 'drupal_goto') {
  $b = batch_get();
  standin_call('update_batch ' . json_encode(array('start' => $start, 'progressive' => isset($b['progressive']) ? $b['progressive'] : NULL)));
  $_SESSION['maintenance_mode'] = variable_get('maintenance_mode', FALSE);
  if (!$_SESSION['maintenance_mode']) {
    variable_set('maintenance_mode', TRUE);
  }
  $ops = array();
  foreach (update_resolve_dependencies($start) as $f => $u) {
    if ($u['allowed']) {
      if (isset($start[$u['module']])) {
        standin_set_schema($u['module'], $u['number'] - 1);
        unset($start[$u['module']]);
      }
      $ops[] = array('update_do_one', array($u['module'], $u['number'], isset($u['reverse_paths']) ? array_keys($u['reverse_paths']) : array()));
    }
  }
  batch_set(array('operations' => $ops, 'finished' => 'update_finished'));
  batch_process($redirect, $url, $redirect_callback);
}
function update_finished($success, $results, $operations) {
  drupal_flush_all_caches();
  $_SESSION['update_results'] = $results;
  if (isset($_SESSION['maintenance_mode']) && !$_SESSION['maintenance_mode']) {
    variable_set('maintenance_mode', FALSE);
  }
}
` + standInUpdateFunctions("system_update_7081", "system_update_7082", "node_update_7016", "mymod_update_7100"),
		"includes/common.inc": `<?php
function module_invoke_all($hook, $arg) {
  standin_call('invoke ' . $hook . ' ' . $arg);
  return standin_get('requirements', array());
}
function drupal_maintenance_theme() {
  standin_call('maintenance theme');
}
/* The batch API: batch_get, batch_set and batch_process of form.inc. */
function &batch_get() {
  static $batch = array();
  return $batch;
}
function batch_set($set) {
  $b =& batch_get();
  if (empty($b)) {
    $b = array('sets' => array());
  }
  $b['sets'][] = $set + array('results' => array(), 'sandbox' => array());
}
function batch_process($redirect = NULL, $url = NULL, $callback = NULL) {
  $b =& batch_get();
  $b += array('progressive' => TRUE);
  if ($b['progressive']) {
    throw new Exception('a progressive batch sends the browser elsewhere');
  }
  $set =& $b['sets'][0];
  $set['queue'] = new StandInMemoryQueue($set['operations']);
  while ($item = $set['queue']->first()) {
    $finished = 1;
    $context = array('sandbox' => &$set['sandbox'], 'results' => &$set['results'], 'finished' => &$finished, 'message' => '');
    call_user_func_array($item[0], array_merge($item[1], array(&$context)));
    if ($finished >= 1) {
      $set['queue']->shift();
      $set['sandbox'] = array();
    }
  }
  call_user_func($set['finished'], TRUE, $set['results'], array());
  $b = NULL;
}
class StandInMemoryQueue {
  private $items;
  public function __construct($items) {
    $this->items = $items;
  }
  public function first() {
    return $this->items ? $this->items[0] : NULL;
  }
  public function shift() {
    array_shift($this->items);
  }
  public function getAllItems() {
    return $this->items;
  }
}
`,
		"includes/batch.inc": `<?php
function _batch_queue($set) {
  return isset($set['queue']) ? $set['queue'] : NULL;
}
`,
		"includes/install.inc": `<?php
function drupal_load_updates() {
  standin_call('load updates');
}
`,
		"includes/file.inc":    "<?php\n",
		"includes/entity.inc":  "<?php\n",
		"includes/unicode.inc": "<?php\n",
	}
}

// standInCore10 is a Drupal 10 core as the update kernel and cron need it.
func standInCore10() map[string]string {
	return map[string]string{
		"standin.php": standInLib,
		"autoload.php": "<?php\n" + standInRequest + `namespace Drupal\Core {
  class DrupalKernel {
    public static function createFromRequest($request, $class_loader, $environment, $allow_dumping = TRUE, $app_root = NULL) {
      standin_call('kernel ' . get_called_class() . ' ' . $environment . ' host ' . $request->host . ' root ' . ($app_root === getcwd() ? 'ok' : $app_root));
      return new static();
    }
    public function boot() {
      standin_refuse();
      standin_call('boot');
    }
    public function preHandle($request) {
      standin_call('preHandle');
    }
  }
}
namespace Drupal\Core\Update {
  class UpdateKernel extends \Drupal\Core\DrupalKernel {}
}
namespace {
  require_once __DIR__ . '/standin.php';
  class StandInClassLoader {}
  class StandInState {
    public function get($key, $default = NULL) {
      return variable_get_10($key, $default);
    }
    public function set($key, $value) {
      $s = standin_state();
      $s['variables'][$key] = $value;
      $s['calls'][] = 'state set ' . $key . ' ' . json_encode($value);
      standin_save($s);
    }
  }
  function variable_get_10($key, $default) {
    $v = standin_get('variables', array());
    return isset($v[$key]) ? $v[$key] : $default;
  }
  class StandInUpdateHookRegistry {
    public function setInstalledVersion($module, $version) {
      standin_set_schema($module, $version);
    }
  }
  class StandInPostUpdateRegistry {
    public function getPendingUpdateFunctions() {
      return array_values(array_diff(standin_get('post_updates', array()), standin_get('post_done', array())));
    }
    public function getPendingUpdateInformation() {
      $info = array();
      foreach ($this->getPendingUpdateFunctions() as $f) {
        list($ext, $name) = explode('_post_update_', $f, 2);
        $info[$ext]['pending'][$name] = 'Post update ' . $name . '.';
      }
      return $info;
    }
    public function getUpdateFunctions($extension) {
      return array();
    }
    public function registerInvokedUpdates($functions) {
      standin_set('post_done', array_merge(standin_get('post_done', array()), $functions));
    }
  }
  class StandInCron {
    public function run() {
      standin_call('cron as ' . standin_user());
      standin_set('messages', array('status' => array('Cron ran <em>fine</em>.')));
      return !standin_get('cron_locked');
    }
  }
  class StandInMessenger {
    public function deleteAll() {
      $m = standin_get('messages', array());
      standin_set('messages', array());
      return $m;
    }
  }
  class Drupal {
    const VERSION = '10.3.1';
    public static function hasService($id) {
      return $id === 'update.update_hook_registry';
    }
    public static function service($id) {
      $services = array('update.update_hook_registry' => 'StandInUpdateHookRegistry', 'update.post_update_registry' => 'StandInPostUpdateRegistry',
        'cron' => 'StandInCron');
      return new $services[$id]();
    }
    public static function state() {
      return new StandInState();
    }
    public static function messenger() {
      return new StandInMessenger();
    }
  }
  return new StandInClassLoader();
}
`,
		"core/includes/install.inc": `<?php
function drupal_load_updates() {
  standin_call('load updates');
}
`,
		"core/includes/update.inc": `<?php
function update_check_requirements() {
  standin_call('check requirements');
  return standin_get('requirements', array());
}
/* A post update, as Drupal runs it: not after a failed update; an
 * exception is its failure; recorded as done when it finished. */
function update_invoke_post_update($function, &$context) {
  if (!empty($context['results']['#abort'])) {
    return;
  }
  list($extension, $name) = explode('_post_update_', $function, 2);
  $ret = array();
  try {
    $ret['results'] = array('query' => $function($context['sandbox']), 'success' => TRUE);
    \Drupal::service('update.post_update_registry')->registerInvokedUpdates(array($function));
  }
  catch (Exception $e) {
    $ret['#abort'] = array('success' => FALSE, 'query' => get_class($e) . ': ' . $e->getMessage());
  }
  $context['results'][$extension][$name] = $ret;
  if (isset($ret['#abort'])) {
    $context['results']['#abort'][] = $function;
  }
}
` + standInUpdateFunctions("system_update_10100", "node_update_10201", "mymod_update_10300", "system_post_update_add_index", "node_post_update_fix_titles"),
	}
}

// stepState is the stand-in site's state as a test writes and reads it.
type stepState struct {
	Schema     map[string]int            `json:"schema"`
	Variables  map[string]any            `json:"variables"`
	Updates    []stepUpdate              `json:"updates"`
	Deps       map[string][]string       `json:"deps,omitempty"`
	Missing    map[string][]string       `json:"missing,omitempty"`
	Fail       string                    `json:"fail,omitempty"`
	FailKind   string                    `json:"fail_kind,omitempty"`
	Multipass  string                    `json:"multipass,omitempty"`
	Removed    bool                      `json:"removed,omitempty"`
	Refuse     bool                      `json:"refuse,omitempty"`
	CronLocked bool                      `json:"cron_locked,omitempty"`
	Reqs       map[string]map[string]any `json:"requirements,omitempty"`
	Posts      []string                  `json:"post_updates,omitempty"`
	PostDone   []string                  `json:"post_done,omitempty"`
	Messages   any                       `json:"messages,omitempty"`
	Calls      []string                  `json:"calls,omitempty"`
}

type stepUpdate struct {
	Module string `json:"module"`
	Number int    `json:"number"`
	Title  string `json:"title"`
}

// stepSite is a stand-in site for cron and update tests.
type stepSite struct {
	p     app.Platform
	db    app.DB
	state string // rec/state.json
}

// newStepSite builds a stand-in Drupal 7 or 10 platform with a site
// "steps.test" and the state st.
func newStepSite(t *testing.T, major int, st stepState) *stepSite {
	t.Helper()
	files, core, docroot := apptest.Drupal7Files, standInCore7(), ""
	if major != 7 {
		files, core, docroot = apptest.Drupal10Files, standInCore10(), "web"
	}
	p, db := standInSite(t, files, core, docroot, "steps.test")
	s := &stepSite{p: p, db: db, state: filepath.Join(p.Docroot, "rec/state.json")}
	s.write(t, st)
	return s
}

func (s *stepSite) write(t *testing.T, st stepState) {
	t.Helper()
	if st.Variables == nil {
		st.Variables = map[string]any{"maintenance_mode": false}
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.state, b, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(s.state, 0o666); err != nil {
		t.Fatal(err)
	}
}

func (s *stepSite) read(t *testing.T) stepState {
	t.Helper()
	b, err := os.ReadFile(s.state)
	if err != nil {
		t.Fatal(err)
	}
	var st stepState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return st
}

func (s *stepSite) step(log *apptest.Log) app.SiteStep {
	return app.SiteStep{Domain: "steps.test", URL: "http://steps.test:8080", User: "www-data", DBType: "mariadb", Log: log.Logf}
}

// updates7 and updates10 are the updates of the stand-in cores: system's
// two (the first in three passes), node's one, and mymod's, which depends
// on node's.
var (
	updates7 = stepState{
		Schema: map[string]int{"system": 7080, "node": 7015, "mymod": 7000},
		Updates: []stepUpdate{
			{"system", 7081, "Adds the flood index."}, {"system", 7082, "Drops an old table."},
			{"node", 7016, "Converts node titles."}, {"mymod", 7100, "Fills the new field."},
		},
		Deps:      map[string][]string{"mymod_update_7100": {"node_update_7016"}},
		Multipass: "system_update_7081",
	}
	updates10 = stepState{
		Schema: map[string]int{"system": 10000, "node": 10200, "mymod": 10000},
		Updates: []stepUpdate{
			{"system", 10100, "Adds the flood index."}, {"node", 10201, "Converts node titles."}, {"mymod", 10300, "Fills the new field."},
		},
		Deps:      map[string][]string{"mymod_update_10300": {"node_update_10201"}},
		Multipass: "system_update_10100",
		Posts:     []string{"system_post_update_add_index", "node_post_update_fix_titles"},
	}
)

// logHas checks that the log has each of lines.
func logHas(t *testing.T, log *apptest.Log, lines ...string) {
	t.Helper()
	for _, line := range lines {
		if !strings.Contains(log.String(), line) {
			t.Errorf("log lacks %q:\n%s", line, log.String())
		}
	}
}

// callIndex is the position of the first call that starts with prefix, or -1.
func callIndex(calls []string, prefix string) int {
	for i, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

// inOrder checks that calls starting with each prefix happened, in that
// order.
func inOrder(t *testing.T, calls []string, prefixes ...string) {
	t.Helper()
	last := -1
	for _, p := range prefixes {
		i := -1
		for j := last + 1; j < len(calls); j++ {
			if strings.HasPrefix(calls[j], p) {
				i = j
				break
			}
		}
		if i < 0 {
			t.Errorf("no call %q after call %d in:\n%s", p, last, strings.Join(calls, "\n"))
			return
		}
		last = i
	}
}

func TestDrupalCron(t *testing.T) {
	for _, major := range []int{7, 10} {
		t.Run(fmt.Sprint("drupal", major), func(t *testing.T) {
			s := newStepSite(t, major, stepState{})
			var log apptest.Log
			if err := Cron(apptest.Ctx(t), aexec.NewLocal(), s.p, s.step(&log)); err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			st := s.read(t)
			want := "bootstrap 7 host steps.test:8080"
			if major != 7 {
				want = "kernel Drupal\\Core\\DrupalKernel prod host steps.test:8080 root ok"
			}
			inOrder(t, st.Calls, want, "cron as www-data")
			if !strings.Contains(log.String(), "info: Drupal: Cron ran fine.") || !strings.Contains(log.String(), "info: cron of steps.test ran in") {
				t.Errorf("log:\n%s", log.String())
			}

			// Another run holds the lock: the step fails and says so.
			st.CronLocked = true
			s.write(t, st)
			err := Cron(apptest.Ctx(t), aexec.NewLocal(), s.p, s.step(&log))
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrCommand || !strings.Contains(pe.Msg, "cron of steps.test: Drupal did not run cron: another cron run") ||
				!strings.Contains(pe.Hint, "lock") {
				t.Errorf("locked cron: %#v", err)
			}
		})
	}
}

func TestDrupalStepFailures(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	t.Run("database-refuses", func(t *testing.T) {
		for _, major := range []int{7, 10} {
			s := newStepSite(t, major, stepState{Refuse: true})
			err := Cron(ctx, ex, s.p, s.step(&apptest.Log{}))
			var pe *provision.Error
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "Access denied for user 'site'@'localhost'") || !strings.Contains(pe.Hint, "database user and password") {
				t.Errorf("drupal %d cron with a refusing database: %#v", major, err)
			}
			_, err = UpdateDB(ctx, ex, s.p, s.step(&apptest.Log{}))
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, "database updates of steps.test: Drupal failed before the updates ran: SQLSTATE[HY000] [1045]") ||
				!strings.Contains(pe.Hint, "database") {
				t.Errorf("drupal %d updates with a refusing database: %#v", major, err)
			}
		}
	})
	t.Run("missing-extensions", func(t *testing.T) {
		// php -n loads no extension at all.
		s := newStepSite(t, 7, stepState{})
		o := s.step(&apptest.Log{})
		o.PHP = []string{"php", "-n"}
		err := Cron(ctx, ex, s.p, o)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrMissingBinary ||
			!strings.Contains(pe.Msg, "lacks the extensions Drupal 7 needs: dom, gd, pdo, pdo_mysql, SimpleXML, xml") {
			t.Fatalf("cron without extensions: %#v", err)
		}
		v := strings.TrimSpace(apptest.PHPEval(t, "/", "echo PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;"))
		for _, pkg := range []string{"php" + v + "-xml", "php" + v + "-gd", "php" + v + "-mysql", "php" + v + "-common"} {
			if !strings.Contains(pe.Hint, "apt-get install ") || !strings.Contains(pe.Hint, pkg) {
				t.Errorf("hint %q lacks %s", pe.Hint, pkg)
			}
		}
		if len(s.read(t).Calls) != 0 {
			t.Error("Drupal ran without its extensions")
		}

		// PostgreSQL sites need pdo_pgsql; an install checks too.
		o.DBType = "postgresql"
		if _, err := UpdateDB(ctx, ex, s.p, o); err == nil || !strings.Contains(err.Error(), "pdo_pgsql") {
			t.Errorf("updates of a PostgreSQL site without extensions: %v", err)
		}
		err = Install(ctx, ex, s.p, InstallOptions{Domain: "steps.test", DB: s.db, PHP: []string{"php", "-n"}})
		if !errors.As(err, &pe) || pe.Code != provision.ErrMissingBinary || !strings.Contains(pe.Msg, "Drupal install of steps.test: PHP") {
			t.Errorf("install without extensions: %#v", err)
		}

		// Everything Drupal needs but mbstring: it runs, with a warning
		// that says what to install.
		var log apptest.Log
		o = s.step(&log)
		o.PHP = []string{"php", "-n"}
		for _, e := range []string{"posix", "pdo", "mysqlnd", "pdo_mysql", "xml", "dom", "simplexml", "gd"} {
			o.PHP = append(o.PHP, "-d", "extension="+e)
		}
		if err := Cron(ctx, ex, s.p, o); err != nil {
			t.Fatalf("cron without mbstring: %v\n%s", err, log.String())
		}
		if !strings.Contains(log.String(), "warning: PHP "+v+" (") || !strings.Contains(log.String(), "lacks the mbstring extension, which Drupal 7 recommends: apt-get install php"+v+"-mbstring") {
			t.Errorf("no warning about mbstring:\n%s", log.String())
		}
	})
	t.Run("bad-input", func(t *testing.T) {
		s := newStepSite(t, 7, stepState{})
		for _, o := range []app.SiteStep{
			{Domain: "../x"}, {Domain: "steps.test", URL: "javascript:x"}, {Domain: "steps.test", DBType: "oracle"},
			{Domain: "steps.test", Drush: "drush"}, {Domain: "steps.test", PHP: []string{"php;rm"}}, {Domain: "steps.test", PHP: []string{"php", "a\nb"}},
		} {
			err := Cron(ctx, ex, s.p, o)
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrInvalidContext {
				t.Errorf("%+v: %v", o, err)
			}
		}
		if len(s.read(t).Calls) != 0 {
			t.Error("Drupal ran on bad input")
		}
	})
}

// updated runs the updates of a new stand-in site with state st, which
// must succeed, and returns the site, the updates, the state after and the
// log.
func updated(t *testing.T, major int, st stepState) (*stepSite, []Update, stepState, *apptest.Log) {
	t.Helper()
	s := newStepSite(t, major, st)
	log := &apptest.Log{}
	got, err := UpdateDB(apptest.Ctx(t), aexec.NewLocal(), s.p, s.step(log))
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return s, got, s.read(t), log
}

func TestUpdateDrupal7(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	s, got, st, log := updated(t, 7, updates7)
	// Prepared as update.php prepares it, then one non-progressive batch
	// of Drupal's own update_batch() with the first pending update of
	// each module.
	inOrder(t, st.Calls, "prepare update", "bootstrap 2 update host steps.test:8080", "bootstrap 4 update", "save session false",
		"bootstrap 6 update", "fix d7 requirements", "bootstrap 7 update", "maintenance theme", "load updates", "fix compatibility",
		"invoke requirements update", `resolve {"system":7081,"node":7016,"mymod":7100}`,
		`update_batch {"start":{"system":7081,"node":7016,"mymod":7100},"progressive":false}`, "variable_set maintenance_mode true",
		"system_update_7081", "system_update_7081", "system_update_7081", "schema system 7081", "system_update_7082", "schema system 7082",
		"node_update_7016", "schema node 7016", "mymod_update_7100", "schema mymod 7100", "flush caches", "variable_set maintenance_mode false")
	if st.Schema["system"] != 7082 || st.Schema["node"] != 7016 || st.Schema["mymod"] != 7100 || st.Variables["maintenance_mode"] != false {
		t.Errorf("after the updates: schema %v, variables %v", st.Schema, st.Variables)
	}
	if len(got) != 4 || got[0] != (Update{"update", "system", "7081", "system_update_7081", UpdateApplied, "Done: system_update_7081"}) {
		t.Errorf("updates: %+v", got)
	}
	logHas(t, log,
		"info: update system_update_7081 (Adds the flood index.): applied: Done: system_update_7081",
		"info: update system_update_7082 (Drops an old table.): applied",
		"info: update node_update_7016 (Converts node titles.): applied",
		"info: update mymod_update_7100 (Fills the new field.): applied",
		"info: steps.test: 4 of 4 database updates applied in",
	)

	// Nothing pending: nothing runs, the caches are rebuilt all the same.
	log = &apptest.Log{}
	st.Calls = nil
	s.write(t, st)
	if got, err := UpdateDB(ctx, ex, s.p, s.step(log)); err != nil || len(got) != 0 {
		t.Fatalf("%v %v\n%s", got, err, log.String())
	}
	if st := s.read(t); callIndex(st.Calls, "update_batch") >= 0 || callIndex(st.Calls, "flush caches") < 0 || !strings.Contains(log.String(), "info: no pending database updates") {
		t.Errorf("no pending updates: calls %q\n%s", st.Calls, log.String())
	}
}

func TestUpdateDrupal7Failures(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	cases := []struct {
		kind, msg string
	}{
		// Drupal's own update_do_one() catches the exception; the batch
		// goes on with the updates that do not depend on it.
		{"exception", "database update node_update_7016 failed: Exception: Table 'node_title' doesn't exist & more in node_update_7016()"},
		// An Error escapes update_do_one() and stops the batch.
		{"error", "database update node_update_7016 failed: Call to undefined function standin_no_such_function() (Error in standin.php line "},
		// A fatal error ends PHP; what ran before is logged all the same.
		{"fatal", "PHP error: Allowed memory size of 16777216 bytes exhausted"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			st := updates7
			st.Fail, st.FailKind = "node_update_7016", c.kind
			s := newStepSite(t, 7, st)
			var log apptest.Log
			_, err := UpdateDB(ctx, ex, s.p, s.step(&log))
			var pe *provision.Error
			if !errors.As(err, &pe) || pe.Code != provision.ErrCommand || !strings.Contains(pe.Msg, "database updates of steps.test: "+c.msg) {
				t.Fatalf("failing update: %#v\n%s", err, log.String())
			}
			if c.kind != "fatal" && !strings.Contains(pe.Hint, "run the updates again") {
				t.Errorf("hint %q", pe.Hint)
			}
			lines := []string{
				"info: update system_update_7081 (Adds the flood index.): applied",
				"info: update system_update_7082 (Drops an old table.): applied",
				"error: update node_update_7016 (Converts node titles.): failed: ",
				"warning: update mymod_update_7100 (Fills the new field.): not run: an update before it failed",
			}
			logHas(t, &log, lines...)
			// As in Drupal, each module's schema was set to just before its
			// first pending update when the batch started.
			got := s.read(t)
			if got.Schema["system"] != 7082 || got.Schema["node"] != 7015 || got.Schema["mymod"] != 7099 || callIndex(got.Calls, "mymod_update_7100") >= 0 {
				t.Errorf("schema %v after a failed update; calls %q", got.Schema, got.Calls)
			}
			if c.kind != "fatal" && got.Variables["maintenance_mode"] != false {
				t.Errorf("the site stays in maintenance mode: %v", got.Variables)
			}
		})
	}
	t.Run("requirements", func(t *testing.T) {
		st := updates7
		st.Reqs = map[string]map[string]any{
			"php":    {"title": "PHP", "value": "8.2", "severity": 1, "description": "PHP <em>8.3</em> is recommended."},
			"schema": {"title": "Database schema", "severity": 2, "description": "The <code>sessions</code> table is broken."},
		}
		s := newStepSite(t, 7, st)
		var log apptest.Log
		_, err := UpdateDB(ctx, ex, s.p, s.step(&log))
		if err == nil || !strings.Contains(err.Error(), "Drupal refuses to run the database updates: Database schema: The sessions table is broken.") {
			t.Fatalf("requirement error: %v", err)
		}
		if !strings.Contains(log.String(), "warning: Drupal requirement: PHP: 8.2: PHP 8.3 is recommended.") {
			t.Errorf("log:\n%s", log.String())
		}
		if callIndex(s.read(t).Calls, "update_batch") >= 0 {
			t.Error("updates ran despite a requirement error")
		}
	})
	t.Run("module-cannot-update", func(t *testing.T) {
		st := updates7
		st.Removed = true
		s := newStepSite(t, 7, st)
		_, err := UpdateDB(ctx, ex, s.p, s.step(&apptest.Log{}))
		if err == nil || !strings.Contains(err.Error(), "the old module cannot be updated: old module can not be updated. Its schema version is 6000.") {
			t.Fatalf("module whose updates were removed: %v", err)
		}
		if callIndex(s.read(t).Calls, "update_batch") >= 0 {
			t.Error("updates ran")
		}
	})
	t.Run("missing-dependency", func(t *testing.T) {
		st := updates7
		st.Missing = map[string][]string{"mymod_update_7100": {"other_update_7001"}}
		s := newStepSite(t, 7, st)
		var log apptest.Log
		if _, err := UpdateDB(ctx, ex, s.p, s.step(&log)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "warning: update mymod_update_7100 (Fills the new field.): skipped: its dependencies are missing: other_update_7001") {
			t.Errorf("log:\n%s", log.String())
		}
	})
}

func TestUpdateDrupal10(t *testing.T) {
	ctx := apptest.Ctx(t)
	ex := aexec.NewLocal()
	s, got, st, log := updated(t, 10, updates10)
	inOrder(t, st.Calls, `kernel Drupal\Core\Update\UpdateKernel prod host steps.test:8080 root ok`, "boot", "preHandle", "load updates",
		"check requirements", `resolve {"system":10100,"node":10201,"mymod":10300}`, "state set system.maintenance_mode true",
		"schema system 10099", "schema node 10200", "schema mymod 10299",
		"system_update_10100", "system_update_10100", "system_update_10100", "schema system 10100",
		"node_update_10201", "schema node 10201", "mymod_update_10300", "schema mymod 10300",
		"flush caches", "system_post_update_add_index", "node_post_update_fix_titles",
		"state set system.maintenance_mode false", "flush caches")
	if st.Schema["system"] != 10100 || st.Schema["node"] != 10201 || st.Schema["mymod"] != 10300 || len(st.PostDone) != 2 {
		t.Errorf("after the updates: schema %v, post updates done %v", st.Schema, st.PostDone)
	}
	if len(got) != 5 || got[3] != (Update{"post_update", "system", "add_index", "system_post_update_add_index", UpdateApplied, "Done: system_post_update_add_index"}) {
		t.Errorf("updates: %+v", got)
	}
	logHas(t, log,
		"info: update system_update_10100 (Adds the flood index.): applied",
		"info: update system_post_update_add_index (Post update add_index.): applied",
		"info: update node_post_update_fix_titles (Post update fix_titles.): applied",
		"info: steps.test: 5 of 5 database updates applied",
	)

	// A second run finds nothing to do.
	log = &apptest.Log{}
	if got, err := UpdateDB(ctx, ex, s.p, s.step(log)); err != nil || len(got) != 0 || !strings.Contains(log.String(), "no pending database updates") {
		t.Errorf("second run: %v %v\n%s", got, err, log.String())
	}

	for _, kind := range []string{"exception", "error"} {
		t.Run("failure-"+kind, func(t *testing.T) {
			st := updates10
			st.Fail, st.FailKind = "node_update_10201", kind
			s := newStepSite(t, 10, st)
			var log apptest.Log
			_, err := UpdateDB(ctx, ex, s.p, s.step(&log))
			if err == nil || !strings.Contains(err.Error(), "database update node_update_10201 failed: ") {
				t.Fatalf("failing update: %v\n%s", err, log.String())
			}
			logHas(t, &log,
				"info: update system_update_10100 (Adds the flood index.): applied",
				"error: update node_update_10201 (Converts node titles.): failed",
				"warning: update mymod_update_10300 (Fills the new field.): not run",
				"warning: update system_post_update_add_index (Post update add_index.): not run",
			)
			got := s.read(t)
			if got.Schema["node"] != 10200 || got.Schema["system"] != 10100 || len(got.PostDone) != 0 || got.Variables["system.maintenance_mode"] != false {
				t.Errorf("after a failed update: schema %v, post updates %v, variables %v", got.Schema, got.PostDone, got.Variables)
			}
		})
	}
}

func TestDrupalStepsWithDrush(t *testing.T) {
	s := newStepSite(t, 10, stepState{})
	drush := filepath.Join(s.p.Root, "vendor/bin/drush")
	apptest.WriteTree(t, s.p.Root, map[string]string{"vendor/bin/drush": `#!/bin/sh
printf '%s\n' "$@" >> "$(dirname "$0")/args.txt"
if [ "$4" = updatedb ] && [ -e "$(dirname "$0")/fail" ]; then
  echo " [error] node_update_10201 failed: Table node_title does not exist" >&2
  exit 1
fi
echo " [success] done"
`})
	if err := os.Chmod(drush, 0o755); err != nil {
		t.Fatal(err)
	}
	var log apptest.Log
	o := s.step(&log)
	o.User = ""
	o.Drush = drush
	ctx := apptest.Ctx(t)
	if err := Cron(ctx, aexec.NewLocal(), s.p, o); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if updates, err := UpdateDB(ctx, aexec.NewLocal(), s.p, o); err != nil || updates != nil {
		t.Fatalf("%v %v\n%s", updates, err, log.String())
	}
	args, _ := os.ReadFile(filepath.Join(s.p.Root, "vendor/bin/args.txt"))
	base := "--root=" + s.p.Docroot + "\n--uri=http://steps.test:8080\n--yes\n"
	if string(args) != base+"cron\n"+base+"updatedb\n" {
		t.Errorf("drush got:\n%s", args)
	}
	if len(s.read(t).Calls) != 0 {
		t.Error("aegir's PHP ran although drush is configured")
	}
	apptest.WriteTree(t, s.p.Root, map[string]string{"vendor/bin/fail": ""})
	_, err := UpdateDB(ctx, aexec.NewLocal(), s.p, o)
	if err == nil || !strings.Contains(err.Error(), "drush updatedb of steps.test failed") || !strings.Contains(err.Error(), "node_update_10201 failed") {
		t.Errorf("failing drush updatedb: %v", err)
	}
}
