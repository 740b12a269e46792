package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/provision"
)

//go:embed templates/*.tmpl
var embedded embed.FS

// TemplateNames lists the templates an administrator can override by a file
// of the same name in $AEGIR_HOME/templates.
func TemplateNames() []string {
	entries, _ := fs.ReadDir(embedded, "templates")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Template returns the embedded text of a template, a starting point for an
// override.
func Template(name string) ([]byte, error) {
	return embedded.ReadFile("templates/" + name)
}

// loadTemplate returns a parsed template, from the override directory when
// a file of that name is there, and says where it came from.
func (s *Server) loadTemplate(name string) (*template.Template, string, error) {
	src, origin := []byte(nil), "embedded template "+name
	if s.cfg.TemplatesDir != "" {
		p := filepath.Join(s.cfg.TemplatesDir, name)
		b, err := os.ReadFile(p)
		switch {
		case err == nil:
			src, origin = b, "template override "+p
		case !errors.Is(err, fs.ErrNotExist):
			return nil, "", s.errf(provision.ErrInternal, "make the override readable by aegir, or remove it", err, "reading %s", p)
		}
	}
	if src == nil {
		var err error
		if src, err = Template(name); err != nil {
			return nil, "", s.errf(provision.ErrInternal, "this is a bug in aegir", err, "no embedded template %s", name)
		}
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(src))
	if err != nil {
		return nil, "", s.errf(provision.ErrConfigTest, "fix the template, or remove the override to use the embedded one", err, "parsing %s", origin)
	}
	return t, origin, nil
}

// render executes a template; the error names the template's origin.
func (s *Server) render(name string, data any) ([]byte, string, error) {
	t, origin, err := s.loadTemplate(name)
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, "", s.errf(provision.ErrConfigTest, "fix the template, or remove the override to use the embedded one", err, "rendering %s", origin)
	}
	return buf.Bytes(), origin, nil
}

var funcs = template.FuncMap{
	"join": strings.Join,
	// nginxString quotes text as an nginx string; "$" becomes an HTML
	// entity, since nginx would read it as a variable.
	"nginxString": func(s string) string {
		s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, "&#36;").Replace(s)
		return `"` + s + `"`
	},
	// apacheString quotes text as one apache argument, on one line.
	"apacheString": func(s string) string {
		s = strings.Join(strings.Fields(s), " ")
		s = strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
		return `"` + s + `"`
	},
}

// IncludeData is what the include-file templates (nginx.conf.tmpl,
// apache.conf.tmpl) get.
type IncludeData struct {
	Config
	SitesDir string // ConfigDir/vhost.d
	// Listen is the sites' HTTP address in the web server's syntax, where
	// the reload probe answers: a server block (virtual host) of name
	// ProbeHost whose path ProbePath answers what GenerationFile says.
	Listen                               string
	ProbeHost, ProbePath, GenerationFile string
}

// SiteData is what the site templates (nginx-site.conf.tmpl,
// apache-site.conf.tmpl, site-disabled.html.tmpl) get.
type SiteData struct {
	Site
	Config Config
	// ServerNames are the names the site itself answers on: Domain, and the
	// aliases unless they redirect. AllNames: Domain and every alias.
	ServerNames, AllNames []string
	// Listen and ListenTLS are the addresses of the HTTP and HTTPS virtual
	// hosts, in the web server's syntax ("127.0.0.1:8080", "80", "*:80").
	Listen, ListenTLS string
	// FastCGI is where PHP requests go, in the web server's syntax
	// ("unix:/run/php/php8.2-fpm.sock", "proxy:unix:...|fcgi://localhost").
	FastCGI string
	// TLS: a certificate and key are set and HTTPS is on or required.
	TLS bool
	// ForceHTTPS: HTTP answers 301 to HTTPS (HTTPS required and TLS).
	ForceHTTPS bool
	// InTLS: this is the data of the HTTPS virtual host (see ForTLS).
	InTLS bool
	// PortInHost: the port of this virtual host is not the default one, so
	// it goes along in PHP's HTTP_HOST (Drupal builds its URLs from it).
	PortInHost bool
	// URL and TLSURL are the site's base URLs, with the port when it is not
	// the default; redirects of aliases go there. TLSPortSuffix is ":PORT"
	// when the HTTPS port is not 443, else empty.
	URL, TLSURL, TLSPortSuffix string
	// DisabledPage is the HTML of the "site disabled" page.
	DisabledPage string
}

// ForTLS returns the data for the HTTPS virtual host.
func (d SiteData) ForTLS() SiteData {
	d.InTLS = true
	d.PortInHost = d.Config.HTTPSPort != 443
	return d
}

func portSuffix(port, def int) string {
	if port == def {
		return ""
	}
	return ":" + strconv.Itoa(port)
}

// siteData prepares a normalized site for its template.
func (s *Server) siteData(ctx context.Context, site Site) (*SiteData, error) {
	php := site.PHPFPM
	if php == "" {
		var err error
		if php, err = s.phpFPM(ctx); err != nil {
			return nil, err
		}
	}
	a, err := parsePHP(php)
	if err != nil {
		return nil, err
	}
	c := s.cfg
	tlsPort := portSuffix(c.HTTPSPort, 443)
	d := &SiteData{
		Site:          site,
		Config:        c,
		ServerNames:   []string{site.Domain},
		AllNames:      append([]string{site.Domain}, site.Aliases...),
		Listen:        s.fl.listen(c.ListenIP, c.HTTPPort),
		ListenTLS:     s.fl.listen(c.ListenIP, c.HTTPSPort),
		FastCGI:       s.fl.fastcgi(a),
		TLS:           site.HTTPS != HTTPSOff && site.CertFile != "" && site.KeyFile != "",
		PortInHost:    c.HTTPPort != 80,
		URL:           "http://" + site.Domain + portSuffix(c.HTTPPort, 80),
		TLSURL:        "https://" + site.Domain + tlsPort,
		TLSPortSuffix: tlsPort,
	}
	d.ForceHTTPS = d.TLS && site.HTTPS == HTTPSRequired
	if !site.Redirect {
		d.ServerNames = d.AllNames
	}
	if site.Disabled {
		page, _, err := s.render("site-disabled.html.tmpl", d)
		if err != nil {
			return nil, err
		}
		d.DisabledPage = string(page)
	}
	return d, nil
}

// phpRunDir is where Debian's php-fpm packages put their sockets.
var phpRunDir = "/run/php"

// phpFPM returns the configured PHP-FPM address, or the newest
// /run/php/php*-fpm.sock on the server.
func (s *Server) phpFPM(ctx context.Context) (string, error) {
	if s.php != "" {
		return s.php, nil
	}
	dir := phpRunDir
	hint := "install php-fpm on the web server and start it, or set the server's php-fpm to its socket or HOST:PORT"
	entries, err := s.ex.ReadDir(ctx, dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", s.errf(provision.ErrMissingBinary, hint, err, "looking for php-fpm sockets in %s on %s", dir, s.ex.Host())
	}
	var socks []string
	for _, e := range entries {
		n := e.Name()
		if strings.HasPrefix(n, "php") && strings.HasSuffix(n, "-fpm.sock") && e.Mode()&fs.ModeSocket != 0 {
			socks = append(socks, n)
		}
	}
	if len(socks) == 0 {
		return "", s.errf(provision.ErrMissingBinary, hint, nil, "no php-fpm socket (php*-fpm.sock) in %s on %s", dir, s.ex.Host())
	}
	sort.Slice(socks, func(i, j int) bool { return entities.CompareVersions(socks[i], socks[j]) < 0 })
	s.php = path.Join(dir, socks[len(socks)-1])
	s.logf(provision.LevelInfo, "php-fpm: using %s (found on %s)", s.php, s.ex.Host())
	return s.php, nil
}

// renderSite renders a normalized site's virtual host.
func (s *Server) renderSite(ctx context.Context, site Site) ([]byte, string, error) {
	d, err := s.siteData(ctx, site)
	if err != nil {
		return nil, "", err
	}
	return s.render(s.fl.siteTmpl, d)
}

// renderInclude renders the include file.
func (s *Server) renderInclude() ([]byte, string, error) {
	return s.render(s.fl.includeTmpl, IncludeData{Config: s.cfg, SitesDir: path.Join(s.cfg.ConfigDir, "vhost.d"),
		Listen: s.fl.listen(s.cfg.ListenIP, s.cfg.HTTPPort), ProbeHost: s.probeHost(), ProbePath: probePath, GenerationFile: s.generationFile()})
}

// RenderSite returns the virtual host that WriteSite would write for site,
// without writing anything.
func (s *Server) RenderSite(ctx context.Context, site Site) ([]byte, error) {
	site, err := s.normalize(site)
	if err != nil {
		return nil, err
	}
	b, _, err := s.renderSite(ctx, site)
	return b, err
}
