package app

import (
	"html"
	"regexp"
	"strings"
)

var (
	htmlStartRe = regexp.MustCompile(`(?i)<!doctype html|<html[\s>]|<head[\s>]|<body[\s>]`)
	htmlTitleRe = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	htmlDropRe  = regexp.MustCompile(`(?is)<(script|style|head|noscript)\b.*?</(script|style|head|noscript)>`)
	htmlBlockRe = regexp.MustCompile(`(?i)<(br|/?(p|div|li|ul|ol|h[1-6]|table|tr|td|th|pre|blockquote|section|header|footer|body|main))\b[^>]*>`)
	htmlTagRe   = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe     = regexp.MustCompile(`\s+`)
)

// summaryMax bounds a page's one-line summary.
const summaryMax = 300

// PageSummary is one line of plain text that says what an HTML page
// says: its title and the start of its text ("Database Error: Error
// establishing a database connection"), never its markup. Text that is
// not HTML comes back on one line, shortened.
func PageSummary(s string) string {
	title := PageTitle(s)
	text := htmlDropRe.ReplaceAllString(s, " ")
	text = plain(htmlBlockRe.ReplaceAllString(text, " "))
	if title != "" {
		text = strings.TrimSpace(strings.TrimPrefix(text, title))
		if text != "" {
			text = title + ": " + text
		} else {
			text = title
		}
	}
	if r := []rune(text); len(r) > summaryMax {
		text = string(r[:summaryMax]) + "..."
	}
	return text
}

// PageTitle is the plain text of an HTML page's title ("" when it has
// none).
func PageTitle(s string) string {
	if m := htmlTitleRe.FindStringSubmatch(s); m != nil {
		return plain(m[1])
	}
	return ""
}

// plain is the text of an HTML fragment on one line.
func plain(s string) string {
	s = html.UnescapeString(htmlTagRe.ReplaceAllString(s, ""))
	return strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
}

// withoutPages is an application's output for the task log: an HTML page
// in it (WordPress's wp_die() page, say) becomes its one-line summary;
// the lines before it (PHP's warnings) stay as they are.
func withoutPages(s string) string {
	loc := htmlStartRe.FindStringIndex(s)
	if loc == nil {
		return s
	}
	before := strings.TrimSpace(s[:loc[0]])
	page := "the application printed an HTML page: " + PageSummary(s[loc[0]:])
	if before == "" {
		return page
	}
	return before + "\n" + page
}
