package exec

import (
	"bytes"
	"testing"
)

func TestPIDSniffer(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		pid    string
		out    string
	}{
		{"first line", []string{"aegir-pid:42\nerr\n"}, "42", "err\n"},
		{"split writes", []string{"aegir-p", "id:4", "2\ne", "rr"}, "42", "err"},
		{"login script first", []string{"bashrc says hi\naegir-pid:7\nboom\n"}, "7", "bashrc says hi\nboom\n"},
		{"no marker", []string{"no marker\npartial"}, "", "no marker\npartial"},
		{"marker later is data", []string{"aegir-pid:1\naegir-pid:2\n"}, "1", "aegir-pid:2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pidSniffer{w: &bytes.Buffer{}}
			for _, w := range tt.writes {
				if n, err := p.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := p.get(); got != tt.pid {
				t.Errorf("pid %q, want %q", got, tt.pid)
			}
			if got := string(p.bytes()); got != tt.out {
				t.Errorf("stderr %q, want %q", got, tt.out)
			}
		})
	}
}
