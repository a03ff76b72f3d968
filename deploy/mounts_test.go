package deploy

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// imageDirs reads, from the final stage of the Dockerfile, the directories
// the image holds and their owner: each `COPY --from=build --chown=O
// /out/X /Y` copies the build stage's /out/X, with every directory below
// it that a `RUN mkdir -p` made, to /Y owned by O. It also returns the
// runtime user (the last USER).
func imageDirs(t *testing.T, dockerfile string) (owner map[string]string, user string) {
	t.Helper()
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var made []string // directories made in the build stage
	owner = map[string]string{}
	mkdir := regexp.MustCompile(`^RUN mkdir -p (.+)$`)
	copyDir := regexp.MustCompile(`^COPY --from=build --chown=(\S+) (\S+) (\S+)$`)
	userLine := regexp.MustCompile(`^USER\s+(\S+)$`)
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		if m := mkdir.FindStringSubmatch(line); m != nil {
			made = append(made, strings.Fields(m[1])...)
		}
		if m := copyDir.FindStringSubmatch(line); m != nil {
			from, to := m[2], m[3]
			for _, d := range made {
				for d != "/" && d != "." {
					if d == from || strings.HasPrefix(d, from+"/") {
						owner[path.Join(to, strings.TrimPrefix(d, from))] = m[1]
					}
					d = path.Dir(d)
				}
			}
		}
		if m := userLine.FindStringSubmatch(line); m != nil {
			user = m[1]
		}
	}
	return owner, user
}

// TestVolumeMountTargetsBelongToTheRuntimeUser: Docker gives a new named
// volume the ownership of its mount point in the image, and a mount point
// the image lacks is made by root. Every target a named volume is mounted
// on in a piperun service must therefore exist in the image, owned by the
// user the image runs as, or the service cannot write its volume.
func TestVolumeMountTargetsBelongToTheRuntimeUser(t *testing.T) {
	p := loadProject(t)
	for _, name := range piperunServices {
		s := service(t, p, name)
		owner, user := imageDirs(t, filepath.Join(s.Build.Context, s.Build.Dockerfile))
		if user == "" {
			t.Fatalf("%s: the Dockerfile sets no USER", name)
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			got, ok := owner[v.Target]
			switch {
			case !ok:
				t.Errorf("%s: volume %s is mounted on %s, which the image does not create", name, v.Source, v.Target)
			case got != user:
				t.Errorf("%s: volume %s is mounted on %s, owned by %s in the image; the image runs as %s", name, v.Source, v.Target, got, user)
			}
		}
	}
}

// TestImageDirs pins the Dockerfile reading the test above relies on.
func TestImageDirs(t *testing.T) {
	df := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(df, []byte("FROM a AS build\nRUN mkdir -p /out/data/artifacts /out/images\nFROM b\n"+
		"COPY --from=build --chown=1:1 /out/data /data\nCOPY --from=build /out/images /images\nUSER 1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	owner, user := imageDirs(t, df)
	if user != "1:1" || owner["/data"] != "1:1" || owner["/data/artifacts"] != "1:1" {
		t.Errorf("owner %v, user %q", owner, user)
	}
	if _, ok := owner["/images"]; ok {
		t.Errorf("/images was copied without --chown, so it is root's: %v", owner)
	}
}
