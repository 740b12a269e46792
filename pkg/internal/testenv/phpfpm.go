package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PHPFPM is a private php-fpm pool: Debian's php-fpm8.2 with its own
// configuration and pid, a root master with www-data workers, listening on
// a unix socket in its own directory. Tests never use the system pool.
type PHPFPM struct {
	Dir    string
	Socket string // for web.Config.PHPFPM
	// PoolDir is the directory whose *.conf the master includes: the
	// pools of isolated sites (StartPHPFPMPools only).
	PoolDir string
	// TestCmd and ReloadCmd test and reload this php-fpm ({version} is
	// the PHP version, as aegir's php_fpm.test_cmd and reload_cmd say
	// it); RuntimeDir is for aegir's php_fpm.runtime_dir.
	TestCmd, ReloadCmd, RuntimeDir string
}

// PHPFPMBinary is the php-fpm that the fixture runs.
const PHPFPMBinary = "/usr/sbin/php-fpm8.2"

// StartPHPFPM starts a private php-fpm pool for the test and stops it when
// the test ends. Its workers start on demand (at most 4), to keep the
// machine small. Each of ini ("opcache.revalidate_freq=3600") sets a
// PHP setting of the pool.
func StartPHPFPM(t testing.TB, ini ...string) *PHPFPM { return startPHPFPM(t, false, ini) }

// StartPHPFPMPools is StartPHPFPM with a pool directory (PoolDir) that the
// master includes, and the commands that test and reload it, for the
// pools of isolated sites; the runtime directory for their sockets and
// directories is the test's too.
func StartPHPFPMPools(t testing.TB) *PHPFPM { return startPHPFPM(t, true, nil) }

// StartPHPFPMUmask is StartPHPFPM whose master (and so its workers) runs
// with umask, as a systemd unit's UMask= sets it ("0002").
func StartPHPFPMUmask(t testing.TB, umask string) *PHPFPM {
	return startPHPFPMUmask(t, false, nil, umask)
}

// Pid is the php-fpm master's process id.
func (p *PHPFPM) Pid(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.Dir, "php-fpm.pid"))
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func startPHPFPM(t testing.TB, pools bool, ini []string) *PHPFPM {
	t.Helper()
	return startPHPFPMUmask(t, pools, ini, "")
}

func startPHPFPMUmask(t testing.TB, pools bool, ini []string, umask string) *PHPFPM {
	t.Helper()
	Need(t, PHPFPMBinary)
	dir := PublicDir(t)
	p := &PHPFPM{Dir: dir, Socket: filepath.Join(dir, "php-fpm.sock")}
	conf := filepath.Join(dir, "php-fpm.conf")
	errLog := filepath.Join(dir, "php-fpm.log")
	include := ""
	if pools {
		p.PoolDir = filepath.Join(dir, "pool.d")
		p.RuntimeDir = filepath.Join(dir, "runtime")
		if err := os.Mkdir(p.PoolDir, 0o755); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		include = "include = " + p.PoolDir + "/*.conf\n"
		p.TestCmd = PHPFPMBinary + " -t --fpm-config " + conf
		p.ReloadCmd = "kill -USR2 \"$(cat " + filepath.Join(dir, "php-fpm.pid") + ")\""
	}
	var extra strings.Builder
	for _, kv := range ini {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("StartPHPFPM: %q is not NAME=VALUE", kv)
		}
		fmt.Fprintf(&extra, "php_admin_value[%s] = %s\n", k, v)
	}
	mustWrite(t, conf, []byte(fmt.Sprintf(`; Private php-fpm of a test.
[global]
pid = %[1]s/php-fpm.pid
error_log = %[2]s
daemonize = no
%[4]s
[aegir-test]
user = www-data
group = www-data
listen = %[3]s
listen.owner = www-data
listen.group = www-data
listen.mode = 0660
pm = ondemand
pm.max_children = 4
pm.process_idle_timeout = 10s
catch_workers_output = yes
%[5]s`, dir, errLog, p.Socket, include, extra.String())))
	argv := []string{PHPFPMBinary, "--nodaemonize", "--fpm-config", conf}
	if umask != "" {
		argv = append([]string{"sh", "-c", "umask " + umask + " && exec \"$@\"", "sh"}, argv...)
	}
	StartDaemon(t, "php-fpm", argv, []string{errLog},
		func() error { return errors.Join(fileExists(p.Socket), fileExists(filepath.Join(dir, "php-fpm.pid"))) })
	return p
}
