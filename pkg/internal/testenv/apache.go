package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ApacheBinary is the apache that the fixture runs.
const ApacheBinary = "/usr/sbin/apache2"

var apacheModules = []string{
	"mpm_event", "authz_core", "authz_host", "mime", "dir", "alias", "rewrite",
	"headers", "proxy", "proxy_fcgi", "socache_shmcb", "ssl", "setenvif",
}

// StartApache starts a private apache for the test and stops it when the
// test ends: Debian's /usr/sbin/apache2 with its own ServerRoot and
// configuration (mpm_event, proxy_fcgi, rewrite, headers, ssl), a root
// parent with www-data children, listening on 127.0.0.1:Port and (https)
// HTTPSPort, ending with `IncludeOptional ConfigDir/apache.conf`.
//
// configDir is aegir's config dir for the server; empty: a new directory
// (see StartNginx).
func StartApache(t testing.TB, configDir string) *Web {
	t.Helper()
	return startApache(t, configDir, false)
}

// StartApacheIncludeFirst is StartApache with aegir's include before the
// system's own virtual host (as a Debian conf-enabled/aegir.conf before
// sites-enabled/000-default.conf): the first virtual host of the address
// answers unknown names. The system's answers "system default".
func StartApacheIncludeFirst(t testing.TB, configDir string) *Web {
	t.Helper()
	return startApache(t, configDir, true)
}

func startApache(t testing.TB, configDir string, includeFirst bool) *Web {
	t.Helper()
	a := newWeb(t, ApacheBinary, configDir)
	dir := a.Dir
	for _, d := range []string{"run", "default"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var mods strings.Builder
	for _, m := range apacheModules {
		fmt.Fprintf(&mods, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	include := "IncludeOptional " + a.ConfigDir + "/apache.conf\n"
	first, last := "", include
	if includeFirst {
		first, last = include, ""
		mustWrite(t, filepath.Join(dir, "default", "index.html"), []byte("system default\n"))
	}
	conf := filepath.Join(dir, "apache2.conf")
	errLog := filepath.Join(dir, "error.log")
	// The Debian binary is run without its envvars: nothing here uses
	// ${APACHE_*}; User and Group are given directly.
	mustWrite(t, conf, []byte(fmt.Sprintf(`# Private apache of a test.
ServerRoot %[1]s
%[2]sListen 127.0.0.1:%[3]d
Listen 127.0.0.1:%[4]d https
PidFile %[1]s/apache2.pid
DefaultRuntimeDir %[1]s/run
Mutex file:%[1]s/run default
ErrorLog %[5]s
LogLevel warn
User www-data
Group www-data
ServerName localhost
TypesConfig /etc/mime.types
StartServers 1
ServerLimit 2
ThreadsPerChild 8
ThreadLimit 8
MinSpareThreads 4
MaxSpareThreads 16
MaxRequestWorkers 16
<Directory />
    Options None
    AllowOverride None
    Require all denied
</Directory>
%[7]s<VirtualHost 127.0.0.1:%[3]d>
    ServerName default.invalid
    DocumentRoot %[1]s/default
    <Directory %[1]s/default>
        Require all granted
    </Directory>
</VirtualHost>
%[8]s`, dir, mods.String(), a.Port, a.HTTPSPort, errLog, a.ConfigDir, first, last)))
	argv := []string{ApacheBinary, "-d", dir, "-f", conf}
	a.TestCmd = shellLine(append(argv, "-t"))
	a.ReloadCmd = shellLine(append(argv, "-k", "graceful"))
	StartDaemon(t, "apache", append(argv, "-D", "FOREGROUND"), []string{errLog}, func() error { return readyWithPID(a.Port, filepath.Join(dir, "apache2.pid")) })
	return a
}
