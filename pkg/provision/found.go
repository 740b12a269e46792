package provision

// FoundSite is a site platform.import found on a platform, reported under
// Changes.FoundSites; its database password travels as the
// secret "db_password/DOMAIN".
type FoundSite struct {
	Domain  string   `json:"domain"`
	Aliases []string `json:"aliases"`
	DBType  string   `json:"db_type"`
	DBName  string   `json:"db_name"`
	DBUser  string   `json:"db_user"`
	DBHost  string   `json:"db_host"`
	DBPort  int      `json:"db_port"`
	Aegir   bool     `json:"aegir"` // its settings were written by aegir
}
