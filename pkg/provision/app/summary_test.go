package app

import (
	"strings"
	"testing"
)

// WordPress's wp_die() page, as it prints it when the database refuses
// it, and nginx's 502 page: one line of text each, no markup.
func TestPageSummary(t *testing.T) {
	wp := "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n\t<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\n" +
		"\t<title>Database Error</title>\n\t<style type=\"text/css\">html { background: #f1f1f1; }</style>\n</head>\n" +
		"<body id=\"error-page\">\n\t<div class=\"wp-die-message\"><h1>Error establishing a database connection</h1></div></body>\n</html>"
	nginx := "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n"
	for page, want := range map[string]string{
		wp:                            "Database Error: Error establishing a database connection",
		nginx:                         "502 Bad Gateway: nginx/1.22.1",
		"PHP Warning:  foo\n  in bar": "PHP Warning: foo in bar",
	} {
		if got := PageSummary(page); got != want {
			t.Errorf("PageSummary = %q, want %q", got, want)
		}
	}
	got := withoutPages("PHP Notice: x in y.php on line 3\n" + wp)
	if got != "PHP Notice: x in y.php on line 3\nthe application printed an HTML page: Database Error: Error establishing a database connection" {
		t.Errorf("withoutPages = %q", got)
	}
	if long := PageSummary("<title>t</title>" + strings.Repeat("word ", 200)); len([]rune(long)) > summaryMax+3 || !strings.HasSuffix(long, "...") {
		t.Errorf("a long page's summary: %d runes", len([]rune(long)))
	}
	if s := "plain output\nof a step"; withoutPages(s) != s {
		t.Errorf("withoutPages changed text without HTML: %q", withoutPages(s))
	}
}
