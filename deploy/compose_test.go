package deploy

import (
	"context"
	"encoding/base64"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// piperunServices are the services that run the piperun binary.
var piperunServices = []string{"api1", "api2", "worker"}

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// loadProject loads docker-compose.yml as `docker compose config` would,
// with an empty environment so that every ${VAR:-default} takes its default.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(nil), cli.WithInterpolation(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

// goSources returns the contents of the non-test Go files under the given
// directories of the repository.
func goSources(t *testing.T, dirs ...string) string {
	t.Helper()
	root := repoRoot(t)
	var b strings.Builder
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			b.Write(src)
			return err
		})
		if err != nil {
			t.Fatalf("read the Go sources of %s: %v", d, err)
		}
	}
	return b.String()
}

// matches returns the first submatch of re in src, as a set.
func matches(re *regexp.Regexp, src string) map[string]bool {
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		out[m[1]] = true
	}
	return out
}

func TestServices(t *testing.T) {
	p := loadProject(t)
	for _, name := range append([]string{"eventstoredb", "kafka"}, piperunServices...) {
		service(t, p, name)
	}
	for name, port := range map[string]string{"api1": "8081", "api2": "8082"} {
		s := service(t, p, name)
		addr := flagValue(s.Command, "--addr")
		_, listen, err := net.SplitHostPort(addr)
		if err != nil {
			t.Errorf("%s: --addr %q: %v", name, addr, err)
			continue
		}
		if len(s.Ports) != 1 || s.Ports[0].Published != port || s.Ports[0].Target == 0 || listen != strconv.FormatUint(uint64(s.Ports[0].Target), 10) {
			t.Errorf("%s: ports %+v, want host port %s published to the --addr port %s", name, s.Ports, port, listen)
		}
		if host, _, _ := net.SplitHostPort(addr); host != "0.0.0.0" && host != "" {
			t.Errorf("%s: listens on %s, which other containers cannot reach", name, addr)
		}
	}
}

// flagValue returns the value of flag in a command line ("--f v" or "--f=v").
func flagValue(cmd []string, flag string) string {
	for i, a := range cmd {
		if a == flag && i+1 < len(cmd) {
			return cmd[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// TestCommandsAreSubcommands checks each piperun service's command against
// the command table and flag definitions in the cli package's sources.
func TestCommandsAreSubcommands(t *testing.T) {
	p := loadProject(t)
	src := goSources(t, "cli")
	subcommands := matches(regexp.MustCompile(`\{name:\s*"([a-z]+)"[^\n]*run:\s*cmd`), src)
	flags := matches(regexp.MustCompile(`\.(?:String|Bool|Int|Int64|Uint|Duration|Float64)(?:Var)?\((?:&[\w.]+,\s*)?"([a-z0-9-]+)"`), src)
	if !subcommands["serve"] || !flags["addr"] {
		t.Fatalf("the cli sources no longer look as this test expects: subcommands %v, flags %v", subcommands, flags)
	}
	for _, name := range piperunServices {
		s := service(t, p, name)
		if len(s.Command) == 0 || !slices.Contains([]string{"serve", "worker"}, s.Command[0]) || !subcommands[s.Command[0]] {
			t.Errorf("%s: command %q does not start with a piperun service subcommand (serve or worker)", name, s.Command)
		}
		for _, a := range s.Command[1:] {
			f, isFlag := strings.CutPrefix(a, "--")
			f, _, _ = strings.Cut(f, "=")
			if isFlag && !flags[f] {
				t.Errorf("%s: flag --%s is defined nowhere in cli/", name, f)
			}
		}
	}
}

// TestEnvironmentIsRead fails when a piperun service sets a PIPERUN_
// variable that no source of the binary reads.
func TestEnvironmentIsRead(t *testing.T) {
	p := loadProject(t)
	read := matches(regexp.MustCompile(`"(PIPERUN_[A-Z0-9_]+)"`), goSources(t, "cmd", "cli", "wiring"))
	if len(read) == 0 {
		t.Fatal("found no PIPERUN_ variable in cmd/, cli/ and wiring/")
	}
	for _, name := range piperunServices {
		s := service(t, p, name)
		for v := range s.Environment {
			if strings.HasPrefix(v, "PIPERUN_") && !read[v] {
				t.Errorf("%s sets %s, which piperun does not read (it reads %v)", name, v, slices.Sorted(maps.Keys(read)))
			}
		}
	}
}

func TestPiperunServicesReachTheirPeers(t *testing.T) {
	p := loadProject(t)
	esdb := service(t, p, "eventstoredb")
	kafka := service(t, p, "kafka")
	advertised := env(kafka, "KAFKA_ADVERTISED_LISTENERS")
	for _, name := range piperunServices {
		s := service(t, p, name)

		u, err := url.Parse(env(s, "PIPERUN_ESDB_URL"))
		switch {
		case err != nil:
			t.Errorf("%s: PIPERUN_ESDB_URL: %v", name, err)
		case u.Scheme != "esdb" || u.Hostname() != esdb.Name || !publishes(esdb, u.Port()) || u.Query().Get("tls") != "false":
			t.Errorf("%s: PIPERUN_ESDB_URL %q, want esdb://%s:<its port>?tls=false (the node is insecure)", name, u, esdb.Name)
		}

		brokers := strings.Split(env(s, "PIPERUN_KAFKA_BROKERS"), ",")
		for _, b := range brokers {
			host, _, err := net.SplitHostPort(b)
			// A client reconnects to the advertised address, so the broker
			// must advertise exactly this one on the compose network.
			if err != nil || host != kafka.Name || !slices.Contains(listenerAddrs(advertised), b) {
				t.Errorf("%s: Kafka broker %q is not one that %s advertises (%s)", name, b, kafka.Name, advertised)
			}
		}
		if env(s, "PIPERUN_KAFKA_TOPIC") == "" {
			t.Errorf("%s: PIPERUN_KAFKA_TOPIC is not set", name)
		}

		for _, peer := range []types.ServiceConfig{esdb, kafka} {
			dep, ok := s.DependsOn[peer.Name]
			if !ok || dep.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: does not wait for %s to be healthy (depends_on %+v)", name, peer.Name, s.DependsOn)
			}
			if peer.HealthCheck == nil || len(peer.HealthCheck.Test) == 0 {
				t.Errorf("%s has no healthcheck, so service_healthy never holds", peer.Name)
			}
		}
	}
}

// publishes reports whether s listens on port: a port it publishes or
// exposes.
func publishes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if strconv.FormatUint(uint64(p.Target), 10) == port {
			return true
		}
	}
	return slices.Contains(s.Expose, port)
}

// listenerAddrs returns the host:port of each listener of a Kafka listener
// list such as "PLAINTEXT://kafka:9092,HOST://localhost:29092".
func listenerAddrs(listeners string) []string {
	var out []string
	for _, l := range strings.Split(listeners, ",") {
		if _, addr, ok := strings.Cut(strings.TrimSpace(l), "://"); ok {
			out = append(out, addr)
		}
	}
	return out
}

func TestVolumes(t *testing.T) {
	p := loadProject(t)
	root := repoRoot(t)
	dataVolumes := map[string]string{}
	for _, name := range piperunServices {
		s := service(t, p, name)
		if env(s, "PIPERUN_DATA_DIR") != "/data" || env(s, "PIPERUN_IMAGES_DIR") != "/images" {
			t.Errorf("%s: data dir %q, images dir %q; want /data and /images", name, env(s, "PIPERUN_DATA_DIR"), env(s, "PIPERUN_IMAGES_DIR"))
		}
		var data, images *types.ServiceVolumeConfig
		for i, v := range s.Volumes {
			switch v.Target {
			case "/data":
				data = &s.Volumes[i]
			case "/images":
				images = &s.Volumes[i]
			}
		}
		if data == nil || data.Type != types.VolumeTypeVolume {
			t.Errorf("%s: /data is not a named volume: %+v", name, data)
		} else if other, dup := dataVolumes[data.Source]; dup {
			t.Errorf("%s and %s share the data volume %s", other, name, data.Source)
		} else {
			dataVolumes[data.Source] = name
		}
		if images == nil || images.Type != types.VolumeTypeBind || images.Source != filepath.Join(root, "images") || !images.ReadOnly {
			t.Errorf("%s: /images is not a read-only bind mount of ./images: %+v", name, images)
		}
	}
}

func TestEventStoreDBNode(t *testing.T) {
	s := service(t, loadProject(t), "eventstoredb")
	if !strings.HasPrefix(s.Image, "eventstore/eventstore:") {
		t.Errorf("image %q, want eventstore/eventstore", s.Image)
	}
	for k, want := range map[string]string{
		"EVENTSTORE_INSECURE":                   "true",
		"EVENTSTORE_RUN_PROJECTIONS":            "None",
		"EVENTSTORE_START_STANDARD_PROJECTIONS": "false",
		"EVENTSTORE_CLUSTER_SIZE":               "1",
	} {
		if got := env(s, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if !publishes(s, "2113") {
		t.Errorf("port 2113 is not published: %+v", s.Ports)
	}
}

// TestKafkaKRaft checks that the single node is its own controller, as
// KRaft needs: it refuses to start otherwise.
func TestKafkaKRaft(t *testing.T) {
	s := service(t, loadProject(t), "kafka")
	roles := strings.Split(env(s, "KAFKA_PROCESS_ROLES"), ",")
	if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") {
		t.Errorf("KAFKA_PROCESS_ROLES = %v, want broker and controller", roles)
	}
	controller := env(s, "KAFKA_CONTROLLER_LISTENER_NAMES")
	var controllerPort string
	for _, l := range strings.Split(env(s, "KAFKA_LISTENERS"), ",") {
		if name, addr, ok := strings.Cut(l, "://"); ok && name == controller {
			_, controllerPort, _ = net.SplitHostPort(addr)
		}
	}
	want := env(s, "KAFKA_NODE_ID") + "@" + s.Name + ":" + controllerPort
	if controllerPort == "" || env(s, "KAFKA_CONTROLLER_QUORUM_VOTERS") != want {
		t.Errorf("KAFKA_CONTROLLER_QUORUM_VOTERS = %q, want %q (this node's controller listener)", env(s, "KAFKA_CONTROLLER_QUORUM_VOTERS"), want)
	}
	if id, err := base64.RawURLEncoding.DecodeString(env(s, "CLUSTER_ID")); err != nil || len(id) != 16 {
		t.Errorf("CLUSTER_ID %q is not a base64url UUID, which Kafka's storage format requires", env(s, "CLUSTER_ID"))
	}
	if env(s, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR") != "1" {
		t.Error("the consumer offsets topic needs a replication factor of 1 on one broker")
	}
}

// TestDockerfile checks what the compose file relies on in the image it
// builds: the piperun binary as entry point, run by a non-root user.
func TestDockerfile(t *testing.T) {
	p := loadProject(t)
	for _, name := range piperunServices {
		s := service(t, p, name)
		if s.Build == nil {
			t.Fatalf("%s is not built from the Dockerfile", name)
		}
		src, err := os.ReadFile(filepath.Join(s.Build.Context, s.Build.Dockerfile))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		df := string(src)
		for _, want := range []string{"CGO_ENABLED=0", "./cmd/piperun", `ENTRYPOINT ["piperun"]`} {
			if !strings.Contains(df, want) {
				t.Errorf("%s: the Dockerfile does not contain %s", name, want)
			}
		}
		users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
		if len(users) == 0 || slices.Contains([]string{"root", "0", "0:0", "root:root"}, users[len(users)-1][1]) {
			t.Errorf("%s: the image runs as root (USER %v)", name, users)
		}
	}
}
