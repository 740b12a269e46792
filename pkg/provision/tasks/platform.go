package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

func init() {
	provision.Register("platform.verify", platformVerify)
	provision.Register("platform.delete", platformDelete)
	provision.Register("platform.import", platformImport)
}

// platformImport finds the sites a platform already holds (Drupal
// sites/*/settings.php; WordPress configurations aegir wrote) for the
// front end to record as installed sites. Their database passwords go to
// the front end as secrets.
func platformImport(ctx context.Context, env *provision.Env, c *provision.Context) (map[string]any, error) {
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	p, err := app.Detect(ctx, ex, c.PlatformRoot)
	if err != nil {
		return nil, err
	}
	sites, err := app.FindSites(ctx, ex, p, c.WebUser, env.Logf)
	if err != nil {
		return nil, err
	}
	found := make([]provision.FoundSite, 0, len(sites))
	for _, s := range sites {
		env.Logf(provision.LevelInfo, "found site %s (database %s on %s)", s.Domain, s.DB.Name, s.DB.Host)
		found = append(found, provision.FoundSite{Domain: s.Domain, Aliases: s.Aliases, DBType: s.DB.Type, DBName: s.DB.Name, DBUser: s.DB.User,
			DBHost: s.DB.Host, DBPort: s.DB.Port, Aegir: s.Aegir})
		env.KeepSecret("db_password/"+s.Domain, s.DB.Password)
	}
	if len(found) == 0 {
		env.Logf(provision.LevelInfo, "no sites found on %s", p.Root)
	}
	return map[string]any{"found_sites": found}, nil
}

// platformVerify checks the platform's root on its web server, records its
// type and core version, and discovers its packages.
func platformVerify(ctx context.Context, env *provision.Env, c *provision.Context) (map[string]any, error) {
	if c.PlatformRoot == "" {
		return nil, provision.Errorf(provision.ErrInvalidContext, "give platform_root in the context", "no platform root given")
	}
	ex, err := env.Connect(ctx, c.Web())
	if err != nil {
		return nil, err
	}
	p, err := app.Verify(ctx, ex, c.PlatformRoot, app.VerifyOptions{Type: c.PlatformType, WebUser: c.WebUser, Log: env.Logf})
	if err != nil {
		return nil, err
	}
	ch := p.Changes()
	pkgs, err := discoverPackages(ctx, env, ex, p)
	if err != nil {
		return ch, err
	}
	ch["packages"] = pkgs
	return ch, nil
}

// platformDelete forgets a platform; its code stays on the server.
func platformDelete(ctx context.Context, env *provision.Env, c *provision.Context) (map[string]any, error) {
	env.Logf(provision.LevelInfo, "platform %s removed from aegir; its code at %s on %s was left in place", c.Platform, c.PlatformRoot, c.WebServer)
	return nil, nil
}
