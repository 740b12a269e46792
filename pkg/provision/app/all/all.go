// Package all registers every application driver with pkg/provision/app:
// import it, for that alone, wherever platforms are handled (the tasks).
// A new application is a package beside drupal and wordpress, imported
// here.
package all

import (
	_ "github.com/aegir-project/aegir/pkg/provision/app/drupal"
	_ "github.com/aegir-project/aegir/pkg/provision/app/wordpress"
)
