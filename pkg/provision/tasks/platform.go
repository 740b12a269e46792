package tasks

import (
	"context"

	"github.com/aegir-project/aegir/pkg/provision"
	"github.com/aegir-project/aegir/pkg/provision/app"
)

func init() {
	provision.Register("platform.verify", platformVerify)
	provision.Register("platform.delete", platformDelete)
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
