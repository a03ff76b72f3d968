package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/piperun/piperun/domain"
)

// funcs are the helpers the templates use. None returns template.HTML:
// everything a template prints is escaped.
func (s *Server) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": func(name string) string {
			if u, ok := s.assets[name]; ok {
				return u
			}
			return "/static/" + name
		},
		"statusClass": statusClass,
		"busy":        busy,
		"fmtTime":     fmtTime,
		"isoTime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
		"fmtFloat": func(format string, v float64) string { return fmt.Sprintf(format, v) },
		"arcsec":   func(deg float64) string { return fmt.Sprintf("%.1f″", deg*3600) },
		"size":     humanSize,
		"shortDigest": func(d string) string {
			d = strings.TrimPrefix(d, "sha256:")
			if len(d) > 12 {
				return d[:12]
			}
			return d
		},
	}
}

// statusClass is the CSS class of a status badge.
func statusClass(st domain.Status) string {
	if st == "" {
		return "status-none"
	}
	return "status-" + strings.ToLower(string(st))
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
