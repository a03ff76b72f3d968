package deploy

import (
	"net"
	"net/url"
	"regexp"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestNothingShared checks that the piperun services need no shared disk:
// each mounts only its own /data volume and ./images, and none names a
// file that another would have to see (the session key is kept in the
// event store).
func TestNothingShared(t *testing.T) {
	p := loadProject(t)
	usedBy := map[string]string{}
	for _, name := range piperunServices {
		s := service(t, p, name)
		for _, v := range s.Volumes {
			if v.Target != "/data" && v.Target != "/images" {
				t.Errorf("%s mounts %s on %s: a piperun service mounts only its /data and ./images", name, v.Source, v.Target)
			}
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			if other, ok := usedBy[v.Source]; ok {
				t.Errorf("volume %s is shared by %s and %s", v.Source, other, name)
			}
			usedBy[v.Source] = name
		}
		if f := env(s, "PIPERUN_SESSION_KEY_FILE"); f != "" {
			t.Errorf("%s reads its session key from the file %s, which every replica would have to share", name, f)
		}
		if env(s, "PIPERUN_ARTIFACTS_URL") == "" {
			t.Errorf("%s keeps its products in its own /data, where the other services cannot read them", name)
		}
	}
}

// TestPiperunHealthChecks checks that each piperun service has a health
// check the distroless image can run — the binary's own healthcheck
// command, no shell — asking /readyz on the port the service listens on.
func TestPiperunHealthChecks(t *testing.T) {
	p := loadProject(t)
	subcommands := matches(regexp.MustCompile(`\{name:\s*"([a-z]+)"[^\n]*run:\s*cmd`), goSources(t, "cli"))
	if !subcommands["healthcheck"] {
		t.Fatal("piperun has no healthcheck command")
	}
	for _, name := range piperunServices {
		s := service(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable {
			t.Errorf("%s has no health check", name)
			continue
		}
		test := hc.Test
		if len(test) != 5 || test[0] != "CMD" || test[1] != "piperun" || test[2] != "healthcheck" || test[3] != "--url" {
			t.Errorf("%s: health check %q, want [CMD piperun healthcheck --url URL] (the image has no shell)", name, test)
			continue
		}
		u, err := url.Parse(test[4])
		if err != nil {
			t.Errorf("%s: health check URL: %v", name, err)
			continue
		}
		listen := flagValue(s.Command, "--addr")
		if s.Command[0] == "worker" {
			listen = flagValue(s.Command, "--metrics-addr")
		}
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("%s: command %q listens on no HTTP address for its health check", name, s.Command)
			continue
		}
		if u.Scheme != "http" || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") || u.Port() != port || u.Path != "/readyz" {
			t.Errorf("%s: health check asks %s, want http://127.0.0.1:%s/readyz (where it listens)", name, u, port)
		}
		if hc.Interval == nil || hc.Retries == nil || *hc.Retries == 0 {
			t.Errorf("%s: health check without interval or retries: %+v", name, hc)
		}
	}
}
