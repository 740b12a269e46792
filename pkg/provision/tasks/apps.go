package tasks

// The application drivers (Drupal, WordPress) register themselves with
// pkg/provision/app, whose Detect gives each platform its driver.
import _ "github.com/aegir-project/aegir/pkg/provision/app/all"
