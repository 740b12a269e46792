package simexec

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// answer is what a server answers to the commands the back end sends,
// recognised by their program (and first arguments): what a verify, cron,
// statistics or backup task asks. Anything else exits 0, printing nothing.
func (c *conn) answer(cmd exec.Command) (exec.Result, int) {
	ok := func(out string) (exec.Result, int) { return exec.Result{Stdout: []byte(out)}, 0 }
	name := path.Base(cmd.Name)
	args := strings.Join(cmd.Args, " ")
	switch {
	case name == "printenv" && args == "HOME":
		return ok("/home/aegir\n")
	case name == "sh" && len(cmd.Args) > 3 && cmd.Args[0] == "-c" && strings.Contains(cmd.Args[1], "command -v"):
		// exec.FindProgram's probe: the first program asked for, in /usr/bin.
		return ok("/usr/bin/" + path.Base(cmd.Args[3]) + "\n")
	case name == "mktemp" && len(cmd.Args) > 0:
		dir, tmpl := "/tmp", cmd.Args[len(cmd.Args)-1]
		for i, a := range cmd.Args {
			if a == "-p" && i+1 < len(cmd.Args) {
				dir = cmd.Args[i+1]
			}
		}
		p := path.Join(dir, strings.ReplaceAll(tmpl, "X", "0")+fmt.Sprint(c.s.seq()))
		if slices.Contains(cmd.Args, "-d") {
			c.s.mkdir(p)
		} else {
			c.s.write(p, nil, 0o600)
		}
		return ok(p + "\n")
	case name == "mkfifo" && len(cmd.Args) > 0:
		// The dump tool's FIFO: the reader finds the dump in it.
		c.s.write(cmd.Args[len(cmd.Args)-1], []byte("-- MariaDB dump (simulated server)\n"), 0o600)
		return ok("")
	}
	return ok("")
}

// WordPressPlatform is the files a WordPress platform at root holds that
// the back end reads.
func WordPressPlatform(root string) map[string][]byte {
	return map[string][]byte{
		path.Join(root, "wp-includes/version.php"): []byte("<?php\n$wp_version = '6.4.2';\n"),
		path.Join(root, "wp-settings.php"):         []byte("<?php\n"),
		path.Join(root, "index.php"):               []byte("<?php\n"),
	}
}

// serveHTTP answers the requests of one connection to a web server:
// 200 with a small page for every request, as a site does.
func serveHTTP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
		body := "<html><head><title>" + req.Host + "</title></head><body>ok</body></html>"
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s", len(body), body); err != nil {
			return
		}
		if req.Close {
			return
		}
	}
}
