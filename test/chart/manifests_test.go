package chart

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/omniroute/omniroute/connector"
	"github.com/omniroute/omniroute/mapping"
)

// serviceMonitor and prometheusRule are the prometheus-operator kinds (monitoring.coreos.com/v1),
// with the fields of the CRDs that the chart sets: decoding strictly into them catches a
// misspelt or misplaced field, as for the Kubernetes types. The operator's Go module is not
// used: it would bring a controller-runtime dependency tree for two structs.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		JobLabel          string               `json:"jobLabel"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []rule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type rule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// manifest is one rendered object, strictly decoded.
type manifest struct {
	Kind, Name string
	Obj        any
}

// kinds are the API types a manifest of each apiVersion and kind decodes into.
var kinds = map[string]func() any{
	"v1/ServiceAccount":                 func() any { return &corev1.ServiceAccount{} },
	"v1/Secret":                         func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                      func() any { return &corev1.ConfigMap{} },
	"v1/Service":                        func() any { return &corev1.Service{} },
	"v1/Pod":                            func() any { return &corev1.Pod{} },
	"apps/v1/Deployment":                func() any { return &appsv1.Deployment{} },
	"rbac.authorization.k8s.io/v1/Role": func() any { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding": func() any { return &rbacv1.RoleBinding{} },
	"policy/v1/PodDisruptionBudget":            func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":       func() any { return &networkingv1.NetworkPolicy{} },
	"networking.k8s.io/v1/Ingress":             func() any { return &networkingv1.Ingress{} },
	"monitoring.coreos.com/v1/ServiceMonitor":  func() any { return &serviceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule":  func() any { return &prometheusRule{} },
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decode splits helm's output into documents and decodes each strictly (sigs.k8s.io/yaml
// UnmarshalStrict: unknown and duplicate fields are errors) into its API type.
func decode(t *testing.T, out string) []manifest {
	t.Helper()
	var ms []manifest
	for _, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm))
		key := tm.APIVersion + "/" + tm.Kind
		mk, ok := kinds[key]
		require.Truef(t, ok, "the chart renders %s, which this test does not know:\n%s", key, doc)
		obj := mk()
		require.NoErrorf(t, yaml.UnmarshalStrict([]byte(doc), obj), "strict decode of %s:\n%s", key, doc)
		var meta struct {
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &meta))
		require.NotEmptyf(t, meta.Metadata.Name, "%s without a name", key)
		require.Equalf(t, "routing", meta.Metadata.Namespace, "%s %s is not in the release namespace", key, meta.Metadata.Name)
		ms = append(ms, manifest{Kind: tm.Kind, Name: meta.Metadata.Name, Obj: obj})
	}
	return ms
}

func stripComments(doc string) string {
	var b strings.Builder
	for line := range strings.Lines(doc) {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func kindList(ms []manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Kind+"/"+m.Name)
	}
	slices.Sort(out)
	return out
}

func one[T any](t *testing.T, ms []manifest) T {
	t.Helper()
	var found []T
	for _, m := range ms {
		if o, ok := m.Obj.(T); ok {
			found = append(found, o)
		}
	}
	require.Lenf(t, found, 1, "want exactly one %T in %v", *new(T), kindList(ms))
	return found[0]
}

func renderDecode(t *testing.T, valuesFile string, set ...string) []manifest {
	t.Helper()
	out, err := render(t, valuesFile, set...)
	require.NoError(t, err)
	return decode(t, out)
}

func TestChartKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values string
		want   []string
	}{
		{
			name:   "one replica",
			values: "default-values.yaml",
			want: []string{
				"ConfigMap/omniroute-mapping", "Deployment/omniroute", "NetworkPolicy/omniroute",
				"Pod/omniroute-test-readyz", "Secret/omniroute", "Service/omniroute", "ServiceAccount/omniroute",
			},
		},
		{
			name:   "HA: leader election, two replicas, monitoring, ingress",
			values: "ha-values.yaml",
			want: []string{
				"ConfigMap/omniroute-dashboard", "Deployment/omniroute", "Ingress/omniroute", "NetworkPolicy/omniroute",
				"Pod/omniroute-test-readyz", "PodDisruptionBudget/omniroute", "PrometheusRule/omniroute",
				"Role/omniroute", "RoleBinding/omniroute", "Service/omniroute", "ServiceAccount/omniroute",
				"ServiceMonitor/omniroute",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ms := renderDecode(t, tc.values)
			require.Equal(t, tc.want, kindList(ms))
		})
	}
}

// pendingVariables are the variables the chart sets that other branches are adding to
// connector.Config now (leader election, the agent gateway). Once merged, connector.Variables
// lists them and this list must be emptied: the test fails while a name is in both.
var pendingVariables []string

func TestDeploymentContract(t *testing.T) {
	t.Parallel()
	known := connector.Variables()
	for _, v := range pendingVariables {
		require.NotContainsf(t, known, v, "connector.Config reads %s now: remove it from pendingVariables", v)
	}
	for _, values := range []string{"default-values.yaml", "ha-values.yaml"} {
		t.Run(values, func(t *testing.T) {
			t.Parallel()
			ms := renderDecode(t, values)
			d := one[*appsv1.Deployment](t, ms)
			pod := d.Spec.Template.Spec
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]

			env := map[string]corev1.EnvVar{}
			for _, e := range c.Env {
				_, dup := env[e.Name]
				require.Falsef(t, dup, "%s set twice", e.Name)
				env[e.Name] = e
				if strings.HasPrefix(e.Name, connector.EnvPrefix+"_") {
					require.Truef(t, slices.Contains(known, e.Name) || slices.Contains(pendingVariables, e.Name),
						"%s is not a variable of connector.Config (`omniroute run -h`): the daemon refuses unknown OMNIROUTE_* variables", e.Name)
				}
			}
			for _, v := range []string{"OMNIROUTE_SALESFORCE_CLIENT_ID", "OMNIROUTE_MAPPING_FILE", "OMNIROUTE_STATE_DIR", "OMNIROUTE_HTTP_ADDR"} {
				require.Containsf(t, env, v, "the Deployment sets %s", v)
			}
			for _, secret := range []string{"OMNIROUTE_ADMIN_TOKEN", "OMNIROUTE_AGENT_TOKEN_KEY"} {
				require.Emptyf(t, env[secret].Value, "%s comes from the Secret, never a plain value", secret)
				require.NotNil(t, env[secret].ValueFrom.SecretKeyRef)
			}

			mounts := map[string]corev1.VolumeMount{}
			for _, m := range c.VolumeMounts {
				require.Emptyf(t, m.SubPath, "mount %s uses subPath: a ConfigMap or Secret update would never reach it", m.Name)
				mounts[m.MountPath] = m
			}
			volumes := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				volumes[v.Name] = v
			}
			// The mapping: a ConfigMap mounted as a directory holding the file the daemon reads.
			mf := env["OMNIROUTE_MAPPING_FILE"].Value
			mm, ok := mounts[dirOf(mf)]
			require.Truef(t, ok, "OMNIROUTE_MAPPING_FILE %s is not in a mounted directory", mf)
			require.NotNil(t, volumes[mm.Name].ConfigMap, "the mapping comes from a ConfigMap")
			// The JWT key: a file of the Secret.
			kf := env["OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE"].Value
			km, ok := mounts[dirOf(kf)]
			require.Truef(t, ok, "OMNIROUTE_SALESFORCE_PRIVATE_KEY_FILE %q is not in a mounted directory", kf)
			ks := volumes[km.Name].Secret
			require.NotNil(t, ks, "the JWT key comes from a Secret")
			require.Equal(t, []corev1.KeyToPath{{Key: "private-key.pem", Path: "private-key.pem"}}, ks.Items)
			// Writable places on a read-only root: the state directory and /tmp, both emptyDir.
			for _, dir := range []string{env["OMNIROUTE_STATE_DIR"].Value, "/tmp"} {
				m, ok := mounts[dir]
				require.Truef(t, ok, "%s is mounted", dir)
				require.NotNilf(t, volumes[m.Name].EmptyDir, "%s is an emptyDir", dir)
				require.False(t, m.ReadOnly)
			}

			// Probes and security.
			require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			require.Equal(t, "http", c.ReadinessProbe.HTTPGet.Port.String())
			sc := c.SecurityContext
			require.True(t, *sc.ReadOnlyRootFilesystem)
			require.False(t, *sc.AllowPrivilegeEscalation)
			require.True(t, *sc.RunAsNonRoot)
			require.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop)
			require.Equal(t, int64(65532), *sc.RunAsUser)
			require.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type)
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.NotEmpty(t, c.Resources.Requests)
			require.NotEmpty(t, c.Resources.Limits)
			require.Contains(t, d.Spec.Template.Annotations, "checksum/config")
		})
	}
}

func dirOf(path string) string {
	i := strings.LastIndex(path, "/")
	if i <= 0 {
		return ""
	}
	return path[:i]
}

func TestChartHA(t *testing.T) {
	t.Parallel()
	t.Run("one replica", func(t *testing.T) {
		t.Parallel()
		ms := renderDecode(t, "default-values.yaml")
		d := one[*appsv1.Deployment](t, ms)
		require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "one writer: the old pod stops first")
		require.Empty(t, d.Spec.Template.Spec.TopologySpreadConstraints)
		require.False(t, *d.Spec.Template.Spec.AutomountServiceAccountToken, "no Kubernetes API access without leader election")
		require.Contains(t, d.Spec.Template.Annotations, "checksum/secret")
		require.Empty(t, envValue(d, "OMNIROUTE_LEADER_ELECTION"), "off unless asked for")
		np := one[*networkingv1.NetworkPolicy](t, ms)
		require.Equal(t, []string{"TCP/443", "TCP/53", "UDP/53"}, egressPorts(np), "egress: DNS and 443 only")
	})
	t.Run("leader election", func(t *testing.T) {
		t.Parallel()
		ms := renderDecode(t, "ha-values.yaml")
		d := one[*appsv1.Deployment](t, ms)
		require.Equal(t, int32(2), *d.Spec.Replicas)
		// A standby is never Ready: a rollout that waits for Ready new pods never ends.
		require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, d.Spec.Strategy.Type)
		require.Equal(t, "100%", d.Spec.Strategy.RollingUpdate.MaxUnavailable.String(), "the old pods may all stop at once")
		require.True(t, *d.Spec.Template.Spec.AutomountServiceAccountToken)
		require.Equal(t, "true", envValue(d, "OMNIROUTE_LEADER_ELECTION"))
		require.NotContains(t, d.Spec.Template.Annotations, "checksum/secret", "an existingSecret is not the chart's to hash")
		var zones bool
		for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
			zones = zones || c.TopologyKey == "topology.kubernetes.io/zone"
			require.Equal(t, d.Spec.Selector.MatchLabels, c.LabelSelector.MatchLabels)
		}
		require.True(t, zones, "two replicas spread across zones")

		role := one[*rbacv1.Role](t, ms)
		var rules []string
		for _, r := range role.Rules {
			for _, res := range r.Resources {
				rules = append(rules, fmt.Sprintf("%s %v %v", res, r.ResourceNames, r.Verbs))
			}
		}
		require.Equal(t, []string{
			"leases [] [create]", "leases [omniroute] [get update]",
		}, rules, "the Role reaches only its Lease, which keeps the replay ids too")
		rb := one[*rbacv1.RoleBinding](t, ms)
		require.Equal(t, role.Name, rb.RoleRef.Name)
		require.Equal(t, d.Spec.Template.Spec.ServiceAccountName, rb.Subjects[0].Name)

		pdb := one[*policyv1.PodDisruptionBudget](t, ms)
		require.Equal(t, d.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
		np := one[*networkingv1.NetworkPolicy](t, ms)
		require.Equal(t, []string{"TCP/443", "TCP/53", "TCP/6443", "UDP/53"}, egressPorts(np), "and the Kubernetes API")
		require.Len(t, np.Spec.Ingress, 1)
		require.Equal(t, "http", np.Spec.Ingress[0].Ports[0].Port.String(), "ingress only to the http port")
		require.NotEmpty(t, np.Spec.Ingress[0].From, "ingress from named peers only")

		ing := one[*networkingv1.Ingress](t, ms)
		var paths []string
		for _, p := range ing.Spec.Rules[0].HTTP.Paths {
			paths = append(paths, p.Path)
		}
		require.Equal(t, []string{"/v1/agent", "/pad"}, paths, "the agent websocket and the pad; never the admin API or /metrics")

		var dash *corev1.ConfigMap
		for _, m := range ms {
			if cm, ok := m.Obj.(*corev1.ConfigMap); ok && strings.HasSuffix(cm.Name, "-dashboard") {
				dash = cm
			}
		}
		require.NotNil(t, dash)
		require.Equal(t, "1", dash.Labels["grafana_dashboard"], "the Grafana sidecar's label")
		require.True(t, json.Valid([]byte(dash.Data["omniroute.json"])))
	})
}

func envValue(d *appsv1.Deployment, name string) string {
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func egressPorts(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, r := range np.Spec.Egress {
		for _, p := range r.Ports {
			out = append(out, fmt.Sprintf("%s/%s", *p.Protocol, p.Port.String()))
		}
	}
	slices.Sort(out)
	return out
}

// TestChartMapping: the mapping the default CI values ship is one the daemon accepts.
func TestChartMapping(t *testing.T) {
	t.Parallel()
	ms := renderDecode(t, "default-values.yaml")
	for _, m := range ms {
		if cm, ok := m.Obj.(*corev1.ConfigMap); ok && cm.Name == "omniroute-mapping" {
			_, err := mapping.Parse([]byte(cm.Data["mapping.yaml"]), "mapping.yaml")
			require.NoError(t, err)
			return
		}
	}
	t.Fatal("no mapping ConfigMap")
}

// TestChartRefuses: values that cannot work fail the render with a message saying why.
func TestChartRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values string
		set    []string
		want   string
	}{
		{"two writers", "default-values.yaml", []string{"replicaCount=2"}, "replicaCount above 1 needs leaderElection.enabled"},
		{"no client id", "default-values.yaml", []string{"salesforce.clientId="}, "salesforce.clientId is required"},
		{"no mapping", "default-values.yaml", []string{"mapping.content="}, "mapping.content or mapping.existingConfigMap is required"},
		{"jwt without a key", "default-values.yaml", []string{"salesforce.privateKey="}, "needs salesforce.privateKey"},
		{"client_credentials without a secret", "default-values.yaml", []string{"salesforce.auth=client_credentials"}, "salesforce.auth client_credentials needs salesforce.clientSecret"},
		{"password without one", "default-values.yaml", []string{"salesforce.auth=password", "salesforce.clientSecret=s"}, "salesforce.auth password needs salesforce.password"},
		// The daemon exits 2 at start-up without the user these flows act as.
		{"jwt without a user", "default-values.yaml", []string{"salesforce.username="}, "salesforce.auth jwt needs salesforce.username"},
		{"password without a user", "ha-values.yaml", []string{"salesforce.auth=password", "salesforce.username="}, "salesforce.auth password needs salesforce.username"},
		{"unknown value", "default-values.yaml", []string{"replicas=2"}, "replicas"},
		{"unknown nested value", "default-values.yaml", []string{"leaderElection.lease=x"}, "lease"},
		{"bad enum", "default-values.yaml", []string{"config.events=kafka"}, "events"},
		{"event lag beyond the buckets", "default-values.yaml", []string{"prometheusRule.eventLagSeconds=60"}, "eventLagSeconds"},
		{"short admin token", "default-values.yaml", []string{"adminToken=short"}, "adminToken"},
		// The gateway refuses a key under 32 characters at start-up (exit 2).
		{"short agent token key", "default-values.yaml", []string{"agentTokenKey=0123456789abcdef"}, "agentTokenKey"},
		// An Ingress with no rule and no default backend is refused by the API server.
		{"ingress without hosts", "default-values.yaml", []string{"ingress.enabled=true", "ingress.hosts=null"}, "ingress.enabled needs ingress.hosts and ingress.paths"},
		{"ingress without paths", "default-values.yaml", []string{"ingress.enabled=true", "ingress.paths=null"}, "ingress.enabled needs ingress.hosts and ingress.paths"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, tc.values, tc.set...)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestHelmTestPod: the `helm test` pod checks /readyz through the Service, is not selected by
// the Deployment (its ReplicaSet would adopt it) nor by the Service, and the NetworkPolicy lets
// it in.
func TestHelmTestPod(t *testing.T) {
	t.Parallel()
	ms := renderDecode(t, "default-values.yaml")
	pod := one[*corev1.Pod](t, ms)
	require.Equal(t, "test", pod.Annotations["helm.sh/hook"])
	require.Contains(t, strings.Join(pod.Spec.Containers[0].Command, " "), "http://omniroute:8080/readyz")
	require.NotContains(t, pod.Spec.Containers[0].Image, ":latest")
	d := one[*appsv1.Deployment](t, ms)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	require.NoError(t, err)
	require.False(t, sel.Matches(labels.Set(pod.Labels)), "the Deployment's selector matches the test pod")
	require.True(t, sel.Matches(labels.Set(d.Spec.Template.Labels)))
	np := one[*networkingv1.NetworkPolicy](t, ms)
	var admitted bool
	for _, peer := range np.Spec.Ingress[0].From {
		if peer.PodSelector != nil && peer.NamespaceSelector == nil {
			s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
			require.NoError(t, err)
			admitted = admitted || s.Matches(labels.Set(pod.Labels))
		}
	}
	require.True(t, admitted, "the NetworkPolicy lets the test pod reach the http port")
}

// TestAlertsSelectTheScrapedJob: the alerts select the job label the ServiceMonitor gives the
// series (the Service name, with no jobLabel), for a release whose name is not the chart's.
func TestAlertsSelectTheScrapedJob(t *testing.T) {
	t.Parallel()
	out, err := renderRelease(t, "prod", "ha-values.yaml")
	require.NoError(t, err)
	ms := decode(t, out)
	svc := one[*corev1.Service](t, ms)
	require.Equal(t, "prod-omniroute", svc.Name)
	sm := one[*serviceMonitor](t, ms)
	require.Empty(t, sm.Spec.JobLabel, "a jobLabel would rename the job the alerts select")
	require.Equal(t, svc.Labels["app.kubernetes.io/name"], sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"])
	require.Equal(t, "http", sm.Spec.Endpoints[0].Port)
	rules := one[*prometheusRule](t, ms)
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			require.Containsf(t, r.Expr, `namespace="routing", job="prod-omniroute"`, "alert %s", r.Alert)
		}
	}
}

// TestLeaderElectionContract: the daemon's leader election reads OMNIROUTE_LEADER_LEASE,
// OMNIROUTE_POD_NAME and OMNIROUTE_POD_NAMESPACE (connector.LeaderConfig); the Lease it uses is
// the one the Role grants, each release has its own Lease (two releases in one namespace must
// not elect one leader between them), and the Role grants nothing but that Lease: the replay
// ids live in the Lease's annotations.
func TestLeaderElectionContract(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, release string
		set           []string
		lease         string
	}{
		{"default lease: the release's full name", "omniroute", nil, "omniroute"},
		{"a second release in the namespace", "sandbox", nil, "sandbox-omniroute"},
		{"a lease named in the values", "omniroute", []string{"leaderElection.leaseName=routing-leader"}, "routing-leader"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := renderRelease(t, tc.release, "ha-values.yaml", tc.set...)
			require.NoError(t, err)
			ms := decode(t, out)
			d := one[*appsv1.Deployment](t, ms)
			require.Equal(t, tc.lease, envValue(d, "OMNIROUTE_LEADER_LEASE"), "the Lease the daemon campaigns for")
			fields := map[string]string{}
			for _, e := range d.Spec.Template.Spec.Containers[0].Env {
				if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
					fields[e.Name] = e.ValueFrom.FieldRef.FieldPath
				}
			}
			require.Equal(t, map[string]string{
				"OMNIROUTE_POD_NAME":      "metadata.name",
				"OMNIROUTE_POD_NAMESPACE": "metadata.namespace",
			}, fields, "the candidate's identity and the Lease's namespace, from the downward API")

			role := one[*rbacv1.Role](t, ms)
			var named []string
			for _, r := range role.Rules {
				require.Equal(t, []string{"coordination.k8s.io"}, r.APIGroups, "the Role grants only Leases")
				require.Equal(t, []string{"leases"}, r.Resources, "the Role grants only Leases")
				named = append(named, r.ResourceNames...)
			}
			require.Equal(t, []string{tc.lease}, named, "the Role's Lease is the daemon's")
		})
	}
}

// TestAlertLabels: prometheusRule.alertLabels are added to every alert and may set its
// severity (the default: critical or warning per alert) without a duplicate key.
func TestAlertLabels(t *testing.T) {
	t.Parallel()
	ms := renderDecode(t, "ha-values.yaml", "prometheusRule.alertLabels.severity=page")
	rules := one[*prometheusRule](t, ms)
	n := 0
	for _, g := range rules.Spec.Groups {
		for _, r := range g.Rules {
			n++
			require.Equalf(t, map[string]string{"severity": "page", "team": "contact-centre"}, r.Labels, "alert %s", r.Alert)
		}
	}
	require.Equal(t, 7, n)

	severity := map[string]string{}
	for _, g := range one[*prometheusRule](t, renderDecode(t, "ha-values.yaml")).Spec.Groups {
		for _, r := range g.Rules {
			severity[r.Alert] = r.Labels["severity"]
			require.Equalf(t, "contact-centre", r.Labels["team"], "alert %s", r.Alert)
		}
	}
	require.Equal(t, map[string]string{
		"OmnirouteStreamDisconnected": "critical", "OmnirouteRoutingStalled": "critical", "OmnirouteNoLeader": "critical",
		"OmnirouteAPIAllocationHigh": "warning", "OmnirouteAgentWorkWriteErrors": "warning",
		"OmnirouteMappingReloadFailed": "warning", "OmnirouteEventLag": "warning",
	}, severity)
}

// TestNotes: NOTES.txt tells what the install cannot do by itself: with an Ingress behind the
// NetworkPolicy, the ingress controller's namespace must be among networkPolicy.ingressFrom (the
// default admits only the monitoring namespace, so agents would get 502s); with leader election,
// a drain of the leader's node waits until the leader pod is deleted (the PodDisruptionBudget
// protects the one Ready pod).
func TestNotes(t *testing.T) {
	t.Parallel()
	notes := func(t *testing.T, values string, set ...string) string {
		t.Helper()
		args := []string{"install", "omniroute", chartDir, "--dry-run=client", "--namespace", "routing", "-f", filepath.Join(chartDir, "ci", values)}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		out, err := helm(t, args...)
		require.NoError(t, err)
		_, after, ok := strings.Cut(out, "NOTES:\n")
		require.True(t, ok, "helm prints the NOTES")
		return after
	}
	const ingressHint = "networkPolicy.ingressFrom admits"
	const drainHint = "delete the leader pod"
	ha := notes(t, "ha-values.yaml")
	require.Contains(t, ha, ingressHint)
	require.Contains(t, ha, drainHint)
	single := notes(t, "default-values.yaml")
	require.NotContains(t, single, ingressHint)
	require.NotContains(t, single, drainHint)
	require.NotContains(t, notes(t, "ha-values.yaml", "networkPolicy.enabled=false"), ingressHint)
}

// TestDurationValues: the schema accepts the durations the daemon and Prometheus accept, and
// refuses the ones they refuse. config.waitingCheck is a Go duration that must be positive
// (connector.Config.Validate); serviceMonitor.interval and scrapeTimeout are Prometheus
// durations (the ServiceMonitor CRD's pattern).
func TestDurationValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, value string
		ok         bool
	}{
		{"config.waitingCheck", "30s", true},
		{"config.waitingCheck", "1m30s", true},
		{"config.waitingCheck", "1.5m", true},
		{"config.waitingCheck", "500ms", true},
		{"config.waitingCheck", "0s", false},
		{"config.waitingCheck", "30", false},
		{"config.waitingCheck", "-1s", false},
		{"config.waitingCheck", "1d", false},
		{"serviceMonitor.interval", "1m30s", true},
		{"serviceMonitor.interval", "1m", true},
		{"serviceMonitor.scrapeTimeout", "500ms", true},
		{"serviceMonitor.interval", "1.5m", false},
		{"serviceMonitor.interval", "30", false},
	}
	for _, tc := range tests {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			t.Parallel()
			_, err := render(t, "ha-values.yaml", tc.key+"="+tc.value)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.key[strings.LastIndex(tc.key, ".")+1:])
		})
	}
}

// TestTuningValues: config.writerInFlight and config.agentSendBuffer reach the daemon as
// OMNIROUTE_WRITER_IN_FLIGHT and OMNIROUTE_AGENT_SEND_BUFFER (defaults 2 and 0, as the daemon's
// own), and the schema refuses what connector.Config.Validate refuses.
func TestTuningValues(t *testing.T) {
	t.Parallel()
	def := connector.DefaultConfig()
	d := one[*appsv1.Deployment](t, renderDecode(t, "default-values.yaml"))
	require.Equal(t, strconv.Itoa(def.WriterInFlight), envValue(d, "OMNIROUTE_WRITER_IN_FLIGHT"))
	require.Equal(t, strconv.Itoa(def.AgentSendBuffer), envValue(d, "OMNIROUTE_AGENT_SEND_BUFFER"))
	d = one[*appsv1.Deployment](t, renderDecode(t, "default-values.yaml", "config.writerInFlight=4", "config.agentSendBuffer=16384"))
	require.Equal(t, "4", envValue(d, "OMNIROUTE_WRITER_IN_FLIGHT"))
	require.Equal(t, "16384", envValue(d, "OMNIROUTE_AGENT_SEND_BUFFER"))
	for _, bad := range []string{"config.writerInFlight=0", "config.writerInFlight=17", "config.agentSendBuffer=-1", "config.agentSendBuffer=2147483648"} {
		_, err := render(t, "default-values.yaml", bad)
		require.Error(t, err, bad)
	}
}
