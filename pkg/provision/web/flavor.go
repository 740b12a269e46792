package web

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
)

// flavor is what differs between nginx and apache; the rest of the package
// is shared.
type flavor struct {
	// binaries are the names of the server program, tried in order (also
	// under /usr/sbin, which is not on a non-root user's PATH).
	binaries    []string
	versionArgs []string
	versionRe   *regexp.Regexp
	// ctl are the names of the program that tests and reloads by default,
	// nil: the server program itself.
	ctl                      []string
	testArgs, reloadArgs     []string
	includeName              string
	includeTmpl, siteTmpl    string
	includeLine              func(file string) string
	listen                   func(ip string, port int) string
	fastcgi                  func(a phpAddr) string
	packageName, includeHelp string
	// generation is the generation file for a token: what the reload
	// probe answers, a 303 to http://HOST/TOKEN (nginx adds
	// /PID, the worker's process id).
	generation func(host, token string) []byte
	// probe is the reload probe's server block (virtual host) on listen,
	// of name host, whose probePath answers what genFile says.
	probe func(listen, host, genFile string) []byte
	// workerTitle is what a worker that accepts connections calls itself
	// (nginx); empty: workers cannot be told apart (apache, whose old
	// children stop accepting before the new ones start).
	workerTitle string
}

// probeNote heads the probe file.
const probeNote = "# Written by aegir at each reload while the server has sites: its reload probe (docs/web-servers.md).\n"

var flavors = map[string]*flavor{
	Nginx: {
		binaries:    []string{"nginx"},
		versionArgs: []string{"-v"},
		versionRe:   regexp.MustCompile(`nginx/(\S+)`),
		testArgs:    []string{"-t"},
		reloadArgs:  []string{"-s", "reload"},
		includeName: "nginx.conf",
		includeTmpl: "nginx.conf.tmpl",
		siteTmpl:    "nginx-site.conf.tmpl",
		includeLine: func(f string) string { return "include " + f + ";" },
		listen: func(ip string, port int) string {
			if ip == "" {
				return strconv.Itoa(port)
			}
			return net.JoinHostPort(ip, strconv.Itoa(port))
		},
		fastcgi: func(a phpAddr) string {
			if a.Socket != "" {
				return "unix:" + a.Socket
			}
			return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
		},
		packageName: "nginx",
		includeHelp: "inside the http {} block of /etc/nginx/nginx.conf",
		generation: func(host, token string) []byte {
			return []byte("return 303 http://" + host + "/" + token + "/$pid;\n")
		},
		probe: func(listen, host, genFile string) []byte {
			return []byte(probeNote + "server {\n    listen " + listen + ";\n    server_name " + host + ";\n    access_log off;\n" +
				"    location = " + probePath + " {\n        include " + genFile + ";\n    }\n    location / {\n        return 404;\n    }\n}\n")
		},
		workerTitle: "nginx: worker process",
	},
	Apache: {
		binaries:    []string{"apache2", "httpd"},
		versionArgs: []string{"-v"},
		versionRe:   regexp.MustCompile(`Apache/(\S+)`),
		ctl:         []string{"apache2ctl", "apachectl"},
		testArgs:    []string{"configtest"},
		reloadArgs:  []string{"graceful"},
		includeName: "apache.conf",
		includeTmpl: "apache.conf.tmpl",
		siteTmpl:    "apache-site.conf.tmpl",
		includeLine: func(f string) string { return "IncludeOptional " + f },
		listen: func(ip string, port int) string {
			if ip == "" {
				ip = "*"
			} else if net.ParseIP(ip).To4() == nil {
				ip = "[" + ip + "]"
			}
			return fmt.Sprintf("%s:%d", ip, port)
		},
		fastcgi: func(a phpAddr) string {
			if a.Socket != "" {
				return "proxy:unix:" + a.Socket + "|fcgi://localhost"
			}
			return "proxy:fcgi://" + net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
		},
		packageName: "apache2",
		includeHelp: "at the end of /etc/apache2/apache2.conf",
		generation: func(host, token string) []byte {
			return []byte("Redirect 303 " + probePath + " http://" + host + "/" + token + "\n")
		},
		probe: func(listen, host, genFile string) []byte {
			return []byte(probeNote + "<VirtualHost " + listen + ">\n    ServerName " + host + "\n    IncludeOptional " + genFile + "\n" +
				"    <Location \"/\">\n        Require all denied\n    </Location>\n</VirtualHost>\n")
		},
	},
}
