package cli

import (
	"github.com/spf13/pflag"

	"github.com/aegir-project/aegir/pkg/entities"
	"github.com/aegir-project/aegir/pkg/hosting"
)

// siteAccount is what site install's --title, --admin-user and
// --admin-email set up: the site's title and its admin account.
type siteAccount struct{ title, user, email string }

func (s *siteAccount) flags(f *pflag.FlagSet) {
	f.StringVar(&s.title, "title", "", "the site's title (WordPress: the blog name; Drupal: the site name; default: the domain)")
	f.StringVar(&s.user, "admin-user", "", "the admin account's user name (default: admin)")
	f.StringVar(&s.email, "admin-email", "", "the admin account's email address (default: the client's, else admin@DOMAIN)")
}

// options checks the flags and returns them as the install task's
// options (none for a flag not given).
func (s *siteAccount) options() (map[string]string, error) {
	if err := entities.ValidateTitle("--title", s.title); err != nil {
		return nil, err
	}
	if err := entities.ValidateAccountName("--admin-user", s.user); err != nil {
		return nil, err
	}
	if err := entities.ValidateAccountEmail("--admin-email", s.email); err != nil {
		return nil, err
	}
	opts := map[string]string{}
	for k, v := range map[string]string{hosting.OptTitle: s.title, hosting.OptAdminUser: s.user, hosting.OptAdminEmail: s.email} {
		if v != "" {
			opts[k] = v
		}
	}
	return opts, nil
}
