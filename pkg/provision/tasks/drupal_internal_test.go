package tasks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/engine"
	"github.com/aegir-project/aegir/pkg/provision/exec"
)

// Drupal's cron and database updates go to the platform's drush when one
// is configured, else to aegir's own PHP step (never to the site's URL),
// with the php-cli the context names. (The steps themselves are tested
// in package app on stand-in Drupal 7 and 10 cores.)
func TestDrupalStepsChooseTheirWay(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"index.php":              "<?php\n",
		"includes/bootstrap.inc": "<?php\ndefine('VERSION', '7.105');\n",
		"drush":                  "#!/bin/sh\nprintf '%s ' \"$@\" >> \"$(dirname \"$0\")/args.txt\"\necho >> \"$(dirname \"$0\")/args.txt\"\n",
	} {
		f := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var log []string
	env := &engine.Env{
		Log:     provision.LoggerFunc(func(level, msg string) { log = append(log, level+": "+msg) }),
		Connect: func(context.Context, provision.ServerRef) (exec.Executor, error) { return exec.NewLocal(), nil },
	}
	c := &provision.Job{Site: provision.SiteSpec{Domain: "d7.test", Platform: provision.PlatformSpec{Root: root, Drush: filepath.Join(root, "drush")},
		Web: provision.WebSpec{ServerRef: provision.ServerRef{Name: "web1", Host: "localhost"}, Type: "nginx", Port: 8080, Home: t.TempDir()}, DBServer: provision.DBSpec{Type: "mariadb"}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, task := range []engine.TaskFunc{siteCron, siteUpdateDB} {
		if _, err := task(ctx, env, c); err != nil {
			t.Fatalf("%v\n%s", err, strings.Join(log, "\n"))
		}
	}
	args, _ := os.ReadFile(filepath.Join(root, "args.txt"))
	base := "--root=" + root + " --uri=http://d7.test:8080 --yes "
	if string(args) != base+"cron \n"+base+"updatedb \n" {
		t.Errorf("drush got:\n%s", args)
	}

	// Without drush: aegir's PHP step, here with a php-cli that loads no
	// extension, which it finds out before Drupal runs.
	c.Site.Platform.Drush = ""
	c.Options = map[string]string{"php_cli": "php -n"}
	for name, task := range map[string]engine.TaskFunc{"cron": siteCron, "updates": siteUpdateDB} {
		_, err := task(ctx, env, c)
		var pe *provision.Error
		if !errors.As(err, &pe) || pe.Code != provision.ErrMissingBinary || !strings.Contains(pe.Msg, "of d7.test: PHP ") ||
			!strings.Contains(pe.Msg, "lacks the extensions Drupal 7 needs: dom, gd, pdo, pdo_mysql") || !strings.Contains(pe.Hint, "apt-get install") {
			t.Errorf("%s without extensions: %#v", name, err)
		}
	}
}
