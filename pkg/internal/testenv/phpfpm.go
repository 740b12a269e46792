package testenv

import (
	"fmt"
	"path/filepath"
	"testing"
)

// PHPFPM is a private php-fpm pool: Debian's php-fpm8.2 with its own
// configuration and pid, a root master with www-data workers, listening on
// a unix socket in its own directory. Tests never use the system pool.
type PHPFPM struct {
	Dir    string
	Socket string // for web.Config.PHPFPM
}

// PHPFPMBinary is the php-fpm that the fixture runs.
const PHPFPMBinary = "/usr/sbin/php-fpm8.2"

// StartPHPFPM starts a private php-fpm pool for the test and stops it when
// the test ends. Its workers start on demand (at most 4), to keep the
// machine small.
func StartPHPFPM(t testing.TB) *PHPFPM {
	t.Helper()
	Need(t, PHPFPMBinary)
	dir := PublicDir(t)
	p := &PHPFPM{Dir: dir, Socket: filepath.Join(dir, "php-fpm.sock")}
	conf := filepath.Join(dir, "php-fpm.conf")
	errLog := filepath.Join(dir, "php-fpm.log")
	mustWrite(t, conf, []byte(fmt.Sprintf(`; Private php-fpm of a test.
[global]
pid = %[1]s/php-fpm.pid
error_log = %[2]s
daemonize = no

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
`, dir, errLog, p.Socket)))
	StartDaemon(t, "php-fpm", []string{PHPFPMBinary, "--nodaemonize", "--fpm-config", conf}, []string{errLog},
		func() error { return fileExists(p.Socket) })
	return p
}
