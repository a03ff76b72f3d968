package deploy

import (
	"net/url"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/piperun/piperun/artifacts"
)

// TestProductsInMinIO checks that every piperun service stores its
// products in the bucket that minio-setup creates on the minio service,
// with MinIO's credentials, and starts only once the bucket exists.
func TestProductsInMinIO(t *testing.T) {
	p := loadProject(t)
	minio := service(t, p, "minio")
	setup := service(t, p, "minio-setup")
	if minio.HealthCheck == nil || len(minio.HealthCheck.Test) == 0 {
		t.Errorf("%s has no healthcheck, so service_healthy never holds", minio.Name)
	}
	if dep, ok := setup.DependsOn[minio.Name]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("%s does not wait for %s to be healthy (depends_on %+v)", setup.Name, minio.Name, setup.DependsOn)
	}
	script := strings.Join(append(append([]string{}, setup.Entrypoint...), setup.Command...), " ")
	for _, name := range piperunServices {
		s := service(t, p, name)
		loc, err := artifacts.ParseLocation(env(s, "PIPERUN_ARTIFACTS_URL"))
		if err != nil || loc.Bucket == nil {
			t.Errorf("%s: PIPERUN_ARTIFACTS_URL %q is not a bucket URL: %v", name, env(s, "PIPERUN_ARTIFACTS_URL"), err)
			continue
		}
		q := loc.Bucket.Query()
		endpoint, err := url.Parse(q.Get("endpoint"))
		if err != nil || endpoint.Hostname() != minio.Name || !publishes(minio, endpoint.Port()) || q.Get("use_path_style") != "true" {
			t.Errorf("%s: PIPERUN_ARTIFACTS_URL %q, want the endpoint http://%s:<its port> with use_path_style=true", name, loc, minio.Name)
		}
		if !strings.Contains(script, "mc mb --ignore-existing ") || !strings.Contains(script, "/"+loc.Bucket.Host) {
			t.Errorf("%s: bucket %s is not the one %s creates (%s)", name, loc.Bucket.Host, setup.Name, script)
		}
		if env(s, "AWS_ACCESS_KEY_ID") != env(minio, "MINIO_ROOT_USER") || env(s, "AWS_SECRET_ACCESS_KEY") != env(minio, "MINIO_ROOT_PASSWORD") || env(s, "AWS_ACCESS_KEY_ID") == "" {
			t.Errorf("%s: the S3 credentials are not MinIO's", name)
		}
		if dep, ok := s.DependsOn[setup.Name]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: does not wait for %s to create the bucket (depends_on %+v)", name, setup.Name, s.DependsOn)
		}
	}
}
