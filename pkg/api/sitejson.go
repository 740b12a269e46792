package api

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/aegir-project/aegir/pkg/entities"
)

// siteList is a list of sites as the API answers it: the JSON that
// encoding/json writes for []*entities.Site, byte for byte, written
// without reflection (for 10,000 sites encoding/json took about a third
// of the request; docs/benchmarks.md). TestSiteListJSON holds the two
// equal, every field of entities.Site set and not.
type siteList []*entities.Site

// appendJSON appends l's JSON to b, as json.Encoder.Encode writes it
// (HTML characters escaped, a newline at the end).
func (l siteList) appendJSON(b []byte) ([]byte, error) {
	if l == nil {
		return append(b, "null\n"...), nil
	}
	b = append(b, '[')
	for i, v := range l {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendSite(b, v); err != nil {
			return nil, err
		}
	}
	return append(b, "]\n"...), nil
}

func appendSite(b []byte, v *entities.Site) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	b = append(b, `{"domain":`...)
	b = appendJSONString(b, v.Domain)
	b = append(b, `,"aliases":`...)
	if v.Aliases == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range v.Aliases {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, a)
		}
		b = append(b, ']')
	}
	b = append(b, `,"redirect":`...)
	b = strconv.AppendBool(b, v.Redirect)
	for _, f := range [...]struct {
		key string
		v   string
	}{{`,"platform":`, v.Platform}, {`,"server":`, v.Server}, {`,"client":`, v.Client}, {`,"db_server":`, v.DBServer},
		{`,"db_name":`, v.DBName}, {`,"db_user":`, v.DBUser}, {`,"db_grant_host":`, v.DBGrantHost}, {`,"profile":`, v.Profile},
		{`,"language":`, v.Language}, {`,"https":`, v.HTTPS}, {`,"php":`, v.PHP}, {`,"isolation":`, v.Isolation},
		{`,"unix_user":`, v.UnixUser}, {`,"status":`, v.Status}} {
		b = append(b, f.key...)
		b = appendJSONString(b, f.v)
	}
	var err error
	b = append(b, `,"created":`...)
	if b, err = appendJSONTime(b, v.Created); err != nil {
		return nil, err
	}
	b = append(b, `,"last_cron":`...)
	if v.LastCron == nil {
		b = append(b, "null"...)
	} else if b, err = appendJSONTime(b, *v.LastCron); err != nil {
		return nil, err
	}
	b = append(b, `,"stats":`...)
	if b, err = appendMarshal(b, v.Stats); err != nil {
		return nil, err
	}
	b = append(b, `,"health":`...)
	if h := v.Health; h == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"status":`...)
		b = appendJSONString(b, h.Status)
		b = append(b, `,"http_code":`...)
		b = strconv.AppendInt(b, int64(h.HTTPCode), 10)
		b = append(b, `,"time_ms":`...)
		b = strconv.AppendInt(b, h.TimeMS, 10)
		b = append(b, `,"checked":`...)
		if b, err = appendJSONTime(b, h.Checked); err != nil {
			return nil, err
		}
		b = append(b, `,"error":`...)
		b = appendJSONString(b, h.Error)
		b = append(b, '}')
	}
	b = append(b, `,"cert":`...)
	if b, err = appendMarshal(b, v.Cert); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendMarshal appends encoding/json's JSON of v (a pointer: nil is null).
func appendMarshal[T any](b []byte, v *T) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// appendJSONTime appends t as time.Time's MarshalJSON does.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		j, err := t.MarshalJSON() // its error, as encoding/json's
		return append(b, j...), err
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// appendJSONString appends s quoted as encoding/json does: a string of
// plain printable ASCII as it is, any other through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a string always marshals
			return append(b, j...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
