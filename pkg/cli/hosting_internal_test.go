package cli

import "testing"

func TestMergeCrontab(t *testing.T) {
	const marker = "# aegir dispatch /srv/aegir"
	line := "* * * * * /usr/bin/aegir --home /srv/aegir hosting dispatch --quiet " + marker
	for _, c := range []struct{ name, cur, want string }{
		{"empty", "", line + "\n"},
		{"kept lines", "MAILTO=ops\n0 3 * * * backup.sh\n", "MAILTO=ops\n0 3 * * * backup.sh\n" + line + "\n"},
		{"replaced", "MAILTO=ops\n*/5 * * * * /old/aegir hosting dispatch " + marker + "\n0 3 * * * backup.sh\n",
			"MAILTO=ops\n" + line + "\n0 3 * * * backup.sh\n"},
		{"duplicates collapse", line + "\n" + line + "\n", line + "\n"},
		{"other home untouched", "* * * * * aegir --home /x # aegir dispatch /x/srv/aegir\n",
			"* * * * * aegir --home /x # aegir dispatch /x/srv/aegir\n" + line + "\n"},
	} {
		got, changed := mergeCrontab(c.cur, line, marker)
		if got != c.want || changed != (c.cur != c.want) {
			t.Errorf("%s: got %q (changed %v), want %q", c.name, got, changed, c.want)
		}
	}
}
