// Command benchsite fills a WordPress site with content for the backup
// benchmark (scripts/bench-backup.sh): files in its uploads directory and
// posts in its database, the same every run (a fixed random seed).
//
//	benchsite -uploads DIR -files-mb 200 -db-mb 50 > posts.sql
//
// The files are half photographs' worth of bytes that do not compress
// (random, as JPEG and PNG data is) and half text (the PHP and HTML of
// the WordPress tree, which compresses about 4:1), in year/month
// directories: 1 MiB images, 2.5 MiB documents, 25 KiB pages. The posts,
// written as SQL INSERTs on standard output, are prose made of the
// words of WordPress's readme and code comments, about 5 KiB each.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

const wpRoot = "/usr/share/wordpress"

func main() {
	uploads := flag.String("uploads", "", "the site's uploads directory to fill")
	filesMB := flag.Int("files-mb", 200, "MiB of files")
	dbMB := flag.Int("db-mb", 50, "MiB of post content")
	flag.Parse()
	if err := run(*uploads, *filesMB, *dbMB); err != nil {
		fmt.Fprintln(os.Stderr, "benchsite:", err)
		os.Exit(1)
	}
}

func run(uploads string, filesMB, dbMB int) error {
	if uploads == "" {
		return fmt.Errorf("-uploads is required")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	text, err := corpus()
	if err != nil {
		return err
	}
	var written int64
	write := func(rel string, b []byte) error {
		p := filepath.Join(uploads, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		written += int64(len(b))
		return os.WriteFile(p, b, 0o644)
	}
	dir := func(i int) string { return fmt.Sprintf("%d/%02d", 2015+i%10, 1+i%12) }
	slice := func(n int) []byte {
		off := rng.IntN(len(text) - n)
		return text[off : off+n]
	}
	half := int64(filesMB) << 19
	for i := 0; written < half; i++ {
		b := make([]byte, 1<<20)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := write(fmt.Sprintf("%s/photo-%04d.jpg", dir(i), i), b); err != nil {
			return err
		}
	}
	for i := 0; written < half+half/2; i++ {
		if err := write(fmt.Sprintf("%s/document-%04d.pdf", dir(i), i), slice(5<<19)); err != nil {
			return err
		}
	}
	for i := 0; written < 2*half; i++ {
		if err := write(fmt.Sprintf("%s/page-%05d.html", dir(i), i), slice(25<<10)); err != nil {
			return err
		}
	}
	return posts(rng, text, dbMB)
}

// corpus is the text of the WordPress tree's PHP files.
func corpus() ([]byte, error) {
	var b []byte
	err := filepath.WalkDir(wpRoot+"/wp-includes", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".php") || len(b) > 32<<20 {
			return err
		}
		c, err := os.ReadFile(p)
		b = append(b, c...)
		return err
	})
	if len(b) < 4<<20 {
		return nil, fmt.Errorf("too little text under %s (is the wordpress package installed?)", wpRoot)
	}
	return b, err
}

// posts writes INSERTs of posts of about 5 KiB each, dbMB MiB in all,
// made of the words of WordPress's readme and of the comments in its code.
func posts(rng *rand.Rand, text []byte, dbMB int) error {
	readme, err := os.ReadFile(filepath.Join(wpRoot, "readme.html"))
	if err != nil {
		return err
	}
	wordRe := regexp.MustCompile(`\b[A-Za-z][a-z]{1,11}\b`)
	words := wordRe.FindAllString(string(readme), -1)
	words = append(words, wordRe.FindAllString(string(text[:4<<20]), -1)...)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	total := int64(dbMB) << 20
	var sb strings.Builder
	for n, i := int64(0), 0; n < total; i++ {
		sb.Reset()
		for sb.Len() < 5<<10 {
			for k := 0; k < 12+rng.IntN(10); k++ {
				sb.WriteString(words[rng.IntN(len(words))])
				sb.WriteByte(' ')
			}
			sb.WriteString(". ")
			if rng.IntN(6) == 0 {
				sb.WriteString("\n\n")
			}
		}
		body := sb.String()
		n += int64(len(body))
		if i%100 == 0 {
			if i > 0 {
				fmt.Fprintln(out, ";")
			}
			fmt.Fprint(out, "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, post_type) VALUES\n")
		} else {
			fmt.Fprint(out, ",\n")
		}
		fmt.Fprintf(out, "(1, NOW(), UTC_TIMESTAMP(), '%s', 'Post %d', '', 'publish', 'post-%d', '', '', NOW(), UTC_TIMESTAMP(), '', 'post')", body, i, i)
	}
	fmt.Fprintln(out, ";")
	return out.Flush()
}
