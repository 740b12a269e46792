package web

import (
	"testing"

	"github.com/aegir-project/aegir/pkg/provision"
)

// A remote server's deploy user tests and reloads the web server through
// `sudo -n PROGRAM ARGS`, a command line a sudo rule can allow exactly;
// root and this machine run the program itself.
func TestDefaultCommandsThroughSudo(t *testing.T) {
	tests := []struct {
		name string
		c    provision.Job
		want string
	}{
		{"remote deploy user", webJob(provision.ServerRef{Host: "web2.example.com", SSHUser: "aegir"}), "sudo -n /usr/sbin/nginx -s reload"},
		{"remote root", webJob(provision.ServerRef{Host: "web2.example.com", SSHUser: "root"}), "/usr/sbin/nginx -s reload"},
		{"this machine", webJob(provision.ServerRef{Host: "localhost"}), "/usr/sbin/nginx -s reload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{cfg: ConfigFromContext("", &tt.c)}
			if got := s.ctlCommand("/usr/sbin/nginx", []string{"-s", "reload"}).String(); got != tt.want {
				t.Errorf("reload command %q, want %q", got, tt.want)
			}
		})
	}
}

// webJob is a job whose web server is reached as ref.
func webJob(ref provision.ServerRef) provision.Job {
	return provision.Job{Site: provision.SiteSpec{Web: provision.WebSpec{ServerRef: ref}}}
}
