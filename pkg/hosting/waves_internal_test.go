package hosting

import (
	"fmt"
	"testing"
)

// --max-failures: a number of sites, or a percentage of the plan rounded
// down; anything else is refused.
func TestAllowedFailures(t *testing.T) {
	for _, c := range []struct {
		spec  string
		total int
		want  int
		bad   bool
	}{{"", 50, 0, false}, {"0", 50, 0, false}, {"3", 50, 3, false}, {"10%", 50, 5, false}, {"10%", 9, 0, false},
		{"100%", 7, 7, false}, {"101%", 7, 0, true}, {"-1", 5, 0, true}, {"+2", 5, 0, true}, {"2.5", 5, 0, true}, {"x%", 5, 0, true}, {"%", 5, 0, true}} {
		got, err := AllowedFailures(c.spec, c.total)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("AllowedFailures(%q, %d) = %d, %v; want %d, error %v", c.spec, c.total, got, err, c.want, c.bad)
		}
	}
}

// The plan: the canary alone first, then waves of N, the last one
// shorter; no canary with 0; a canary larger than the plan is the plan.
func TestWaves(t *testing.T) {
	sites := []string{"a", "b", "c", "d", "e", "f"}
	for _, c := range []struct {
		canary, wave int
		want         string
	}{{1, 2, "[[a] [b c] [d e] [f]]"}, {0, 4, "[[a b c d] [e f]]"}, {2, 10, "[[a b] [c d e f]]"}, {9, 1, "[[a b c d e f]]"}} {
		if got := fmt.Sprint(Waves(sites, c.canary, c.wave)); got != c.want {
			t.Errorf("Waves(canary %d, wave %d) = %s, want %s", c.canary, c.wave, got, c.want)
		}
	}
	if w := Waves(nil, 1, 10); len(w) != 0 {
		t.Errorf("Waves of no sites: %v", w)
	}
	if WaveName(0, true) != "canary" || WaveName(1, true) != "wave 1" || WaveName(0, false) != "wave 1" {
		t.Error("wave names")
	}
}
