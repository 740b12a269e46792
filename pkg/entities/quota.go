package entities

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Quotas a client can have (Client.QuotaSites, QuotaDisk, QuotaBackups).
const (
	QuotaSites   = "sites"
	QuotaDisk    = "disk"
	QuotaBackups = "backups"
)

// QuotaError is a change refused because it would take a client over one
// of its quotas: an install or a clone when the client's sites reached
// their number or their disk space. The command line exits 2 with it; the
// HTTP API answers 409.
type QuotaError struct {
	Client string
	Quota  string // QuotaSites or QuotaDisk
	Limit  int64  // the quota
	Used   int64  // what the client uses of it
}

// ErrQuota is matched by every *QuotaError (errors.Is).
var ErrQuota = errors.New("quota reached")

// Is lets errors.Is(err, ErrQuota) match.
func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

func (e *QuotaError) Error() string {
	if e.Quota == QuotaDisk {
		return fmt.Sprintf("client %s: quota of %s disk reached (%s in use)", e.Client, FormatSize(e.Limit), FormatSize(e.Used))
	}
	return fmt.Sprintf("client %s: quota of %d %s reached (%d in use)", e.Client, e.Limit, e.Quota, e.Used)
}

// HTTPStatus is the HTTP API's answer to a refusal: 409 Conflict.
func (e *QuotaError) HTTPStatus() int { return 409 }

// Hint says how to make room, in prose; Fix has the actions.
func (e *QuotaError) Hint() string {
	if e.Quota == QuotaDisk {
		return "raise the quota, or free space on the client's sites (their statistics measure them again)"
	}
	return "raise the quota, or delete one of the client's sites"
}

// Fix is what to do: raise the quota (N, SIZE: the new one), or look at
// the client's sites.
func (e *QuotaError) Fix() []Action {
	raise := Do("client.edit", e.Client, "quota-sites=N")
	if e.Quota == QuotaDisk {
		raise = Do("client.edit", e.Client, "quota-disk=SIZE")
	}
	return []Action{raise, Do("site.list", "", "client="+e.Client)}
}

var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"", 0}}

// ParseSize reads a size in bytes: a whole number with an optional binary
// unit K, M, G or T (also written KB, KiB, ...; 1K is 1024 bytes). Empty
// is 0.
func ParseSize(field, s string) (int64, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	if v == "" {
		return 0, nil
	}
	v = strings.TrimSuffix(strings.TrimSuffix(v, "B"), "I")
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(v, u.suffix)
		if !ok || u.suffix == "" && v != num {
			continue
		}
		if num == "" || !allDigits(num) {
			break
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > (1<<62)>>u.shift {
			return 0, Invalid(field, s, "is too large")
		}
		return n << u.shift, nil
	}
	return 0, Invalid(field, s, "must be a whole number of bytes with an optional unit K, M, G or T (e.g. 10G); 0 for no limit")
}

// FormatSize writes a size in bytes the way ParseSize reads it back when
// it is a whole number of units (10G), else with one decimal (1.5G).
func FormatSize(n int64) string {
	for _, u := range sizeUnits[:4] {
		unit := int64(1) << u.shift
		if n >= unit {
			if n%unit == 0 {
				return strconv.FormatInt(n/unit, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(n)/float64(unit), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}
