package web

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
)

// A reload of php-fpm (its USR2: the master executes itself again) empties
// its opcache, for every pool and site of that php-fpm: the next request
// of each compiles its code again (a WordPress front page about ten times
// as long as when compiled, docs/benchmarks.md, Isolation). When a task
// reloads php-fpm for a new pool, HotScripts reads, before the reload,
// which scripts under a platform's root php-fpm has compiled, and
// CompileScripts has the new pool compile them again once it answers,
// while the task goes on with other steps: the site's first request, its
// health check, finds them compiled.

// maxHot is how many scripts HotScripts reads at most.
const maxHot = 1500

// hotScript prints the scripts under AEGIR_OPCACHE_UNDER that opcache
// holds, one a line, after "aegir-opcache on" ("off" without opcache).
const hotScript = `<?php
// aegir: lists the scripts under a platform that php-fpm has compiled.
// Run once by aegir over FastCGI, then removed.
header('Content-Type: text/plain');
$st = function_exists('opcache_get_status') ? @opcache_get_status(true) : false;
if (!is_array($st)) {
	echo "aegir-opcache off\n";
	exit;
}
echo "aegir-opcache on\n";
$under = rtrim((string) ($_SERVER['AEGIR_OPCACHE_UNDER'] ?? ''), '/') . '/';
$n = 0;
foreach (array_keys($st['scripts'] ?? []) as $f) {
	if ($under !== '/' && strncmp($f, $under, strlen($under)) === 0 && strpos($f, "\n") === false
		&& strpos(basename($f), '.aegir-opcache-') !== 0 && $n++ < ` + "MAXHOT" + `) {
		echo $f, "\n";
	}
}
@opcache_invalidate(__FILE__, true);
`

// compileScript compiles each of AEGIR_OPCACHE_FILES (one a line) and
// prints how many it compiled.
const compileScript = `<?php
// aegir: has php-fpm compile scripts again after its reload.
// Run once by aegir over FastCGI, then removed.
header('Content-Type: text/plain');
echo "aegir-opcache on\n";
$n = 0;
if (function_exists('opcache_compile_file')) {
	foreach (explode("\n", (string) ($_SERVER['AEGIR_OPCACHE_FILES'] ?? '')) as $f) {
		if ($f !== '' && !opcache_is_script_cached($f) && @opcache_compile_file($f)) {
			$n++;
		}
	}
}
echo $n, "\n";
@opcache_invalidate(__FILE__, true);
`

// HotScripts are the scripts under root (a platform's) that php-fpm at
// addr (empty: the server's) has compiled; its script lies in root.
func (s *Server) HotScripts(ctx context.Context, addr, root string) ([]string, error) {
	if !path.IsAbs(root) || strings.ContainsAny(root, "\x00\n") {
		return nil, fmt.Errorf("not a directory path: %q", root)
	}
	code := strings.Replace(hotScript, "MAXHOT", strconv.Itoa(maxHot), 1)
	out, err := s.runScript(ctx, addr, "", root, code, map[string]string{"AEGIR_OPCACHE_UNDER": root})
	if err != nil {
		return nil, err
	}
	lines, err := scriptLines(out)
	if err != nil {
		return nil, err
	}
	return lines, nil
}

// CompileScripts has php-fpm at addr compile files (HotScripts' list, of
// the platform at root, where its script lies), and logs how many it
// compiled and what it took. A failure is a debug line: the requests
// compile what was not.
func (s *Server) CompileScripts(ctx context.Context, addr, root string, files []string) {
	if len(files) == 0 {
		return
	}
	start := time.Now()
	out, err := s.runScript(ctx, addr, "", root, compileScript, map[string]string{"AEGIR_OPCACHE_FILES": strings.Join(files, "\n")})
	var lines []string
	if err == nil {
		lines, err = scriptLines(out)
	}
	if err == nil && len(lines) != 1 {
		err = fmt.Errorf("aegir's script answered %d lines", len(lines))
	}
	if err != nil {
		s.logf(provision.LevelDebug, "php-fpm at %s did not compile the platform's scripts again: %v", addr, err)
		return
	}
	s.logf(provision.LevelInfo, "php-fpm on %s compiled %s of the %d scripts of %s it had compiled before its reload (%s)",
		s.ex.Host(), lines[0], len(files), root, time.Since(start).Round(time.Millisecond))
}

// scriptLines are the lines of an answer of hotScript or compileScript
// after its first; opcache off is no line.
func scriptLines(out []byte) ([]string, error) {
	_, body, ok := bytes.Cut(out, []byte("\r\n\r\n"))
	if !ok {
		body = out
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	switch lines[0] {
	case "aegir-opcache off":
		return nil, nil
	case "aegir-opcache on":
		return lines[1:], nil
	}
	return nil, fmt.Errorf("aegir's script did not run: %.200q", strings.TrimSpace(string(out)))
}
