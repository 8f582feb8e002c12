package deploy

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/webtier/webtier/config"
)

// The parts of Kubernetes objects these tests look at; the rest of each
// manifest is decoded and ignored.
type (
	object struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name   string            `yaml:"name"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Data map[string]string `yaml:"data"` // ConfigMap
		Spec struct {
			Selector yaml.Node   `yaml:"selector"` // Deployment: matchLabels; Service: labels
			Template podTemplate `yaml:"template"` // Deployment
			Ports    []struct {  // Service
				Port       int    `yaml:"port"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
		file string
	}
	podTemplate struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds *int            `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               securityContext `yaml:"securityContext"`
			Containers                    []container     `yaml:"containers"`
			Volumes                       []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	}
	container struct {
		Name  string   `yaml:"name"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		ReadinessProbe  *probe          `yaml:"readinessProbe"`
		LivenessProbe   *probe          `yaml:"livenessProbe"`
		SecurityContext securityContext `yaml:"securityContext"`
		Lifecycle       struct {
			PreStop *struct {
				Exec  any `yaml:"exec"`
				Sleep *struct {
					Seconds int `yaml:"seconds"`
				} `yaml:"sleep"`
				HTTPGet any `yaml:"httpGet"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		TCPSocket *struct {
			Port string `yaml:"port"`
		} `yaml:"tcpSocket"`
		Exec any `yaml:"exec"`
	}
	securityContext struct {
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
		RunAsUser                *int  `yaml:"runAsUser"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
			Add  []string `yaml:"add"`
		} `yaml:"capabilities"`
	}
)

// manifests decodes every document of every deploy/kubernetes/*.yaml file.
func manifests(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes (%v)", err)
	}
	byKind := map[string]object{}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for doc := 1; ; doc++ {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("%s, document %d: %v", file, doc, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Errorf("%s, document %d: apiVersion, kind and metadata.name are required", file, doc)
			}
			o.file = file
			if prev, ok := byKind[o.Kind]; ok {
				t.Errorf("%s: a second %s (first in %s); the tests expect one of each", file, o.Kind, prev.file)
			}
			byKind[o.Kind] = o
		}
		f.Close()
	}
	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} {
		if _, ok := byKind[kind]; !ok {
			t.Fatalf("no %s in deploy/kubernetes", kind)
		}
	}
	return byKind
}

// loadConfig loads a webtier config file as `webtier validate` does and
// returns it with its first listener's port. name says where the file
// comes from.
func loadConfig(t *testing.T, name, file string) (*config.Config, int) {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("%s: webtier validate fails: %v", name, err)
	}
	_, port, err := net.SplitHostPort(cfg.Proxy.Listeners[0].Address)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, p
}

// The ConfigMap's config is one webtier accepts, and the Deployment runs
// it: mounted where -config points, probed on its health path and port,
// given the time its drain takes, and locked down.
func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	cm, dep, svc, pdb := objs["ConfigMap"], objs["Deployment"], objs["Service"], objs["PodDisruptionBudget"]

	const key = "webtier.yaml"
	src, ok := cm.Data[key]
	if !ok {
		t.Fatalf("%s: ConfigMap has no data.%s", cm.file, key)
	}
	file := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port := loadConfig(t, cm.file+" data."+key, file)
	want := drainSettings(t, file)

	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers; want webtier alone", dep.file, len(pod.Containers))
	}
	c := pod.Containers[0]

	// The config file webtier reads is the ConfigMap's key.
	configArg := ""
	if i := slices.Index(c.Args, "-config"); i >= 0 && i+1 < len(c.Args) {
		configArg = c.Args[i+1]
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name &&
				filepath.Join(m.MountPath, key) == configArg {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("%s: -config %q is not the ConfigMap %q's %s mounted", dep.file, configArg, cm.Metadata.Name, key)
	}

	// Probes: readiness on the health endpoint (out of rotation while
	// draining); liveness not on it (a drain must not restart the pod).
	portOf := func(name string) int {
		for _, p := range c.Ports {
			if p.Name == name || strconv.Itoa(p.ContainerPort) == name {
				return p.ContainerPort
			}
		}
		return 0
	}
	switch r := c.ReadinessProbe; {
	case r == nil || r.HTTPGet == nil:
		t.Errorf("%s: no readinessProbe.httpGet on the health endpoint", dep.file)
	case r.HTTPGet.Path != want.HealthPath || portOf(r.HTTPGet.Port) != port:
		t.Errorf("%s: readiness probe asks %s on port %d; the config's health endpoint is %s on port %d",
			dep.file, r.HTTPGet.Path, portOf(r.HTTPGet.Port), want.HealthPath, port)
	}
	if l := c.LivenessProbe; l == nil {
		t.Errorf("%s: no livenessProbe", dep.file)
	} else if l.HTTPGet != nil && l.HTTPGet.Path == want.HealthPath {
		t.Errorf("%s: the liveness probe asks the health endpoint, which answers 503 while draining or in standby: the kubelet would restart the pod", dep.file)
	}

	// The kubelet sends SIGKILL when the grace period ends: it must cover
	// a preStop sleep (the grace period runs during it), the drain's wait
	// and its timeout.
	var preStop int
	if ps := c.Lifecycle.PreStop; ps != nil {
		if ps.Exec != nil {
			t.Errorf("%s: preStop exec: the image has no shell or sleep to run", dep.file)
		}
		if ps.Sleep != nil {
			preStop = ps.Sleep.Seconds
		}
	}
	need := preStop + int(want.DrainWait.Seconds()) + int(want.DrainTimeout.Seconds())
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < need {
		t.Errorf("%s: terminationGracePeriodSeconds %v; want at least %d (preStop %ds + drain.wait %v + drain.timeout %v)",
			dep.file, deref(g), need, preStop, want.DrainWait, want.DrainTimeout)
	}

	// Locked down: not root, no privilege, read-only root, no capability.
	nonRoot := c.SecurityContext.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = pod.SecurityContext.RunAsNonRoot
	}
	uid := c.SecurityContext.RunAsUser
	if uid == nil {
		uid = pod.SecurityContext.RunAsUser
	}
	sc := c.SecurityContext
	for _, check := range []struct {
		ok   bool
		what string
	}{
		{nonRoot != nil && *nonRoot, "runAsNonRoot: true"},
		{uid == nil || *uid != 0, "runAsUser not 0"},
		{sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "allowPrivilegeEscalation: false"},
		{sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "readOnlyRootFilesystem: true"},
		{slices.Contains(sc.Capabilities.Drop, "ALL"), "capabilities.drop: [ALL]"},
		{len(sc.Capabilities.Add) == 0, "no capabilities.add"},
	} {
		if !check.ok {
			t.Errorf("%s: container %s: want %s", dep.file, c.Name, check.what)
		}
	}

	// The Deployment's selector and the Service's select its pods, and the
	// Service sends to the listener's port.
	var depSel struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	var svcSel map[string]string
	var pdbSel struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	if err := dep.Spec.Selector.Decode(&depSel); err != nil {
		t.Fatalf("%s: selector: %v", dep.file, err)
	}
	if err := pdb.Spec.Selector.Decode(&pdbSel); err != nil {
		t.Fatalf("%s: selector: %v", pdb.file, err)
	}
	if err := svc.Spec.Selector.Decode(&svcSel); err != nil {
		t.Fatalf("%s: selector: %v", svc.file, err)
	}
	labels := dep.Spec.Template.Metadata.Labels
	for name, sel := range map[string]map[string]string{dep.file: depSel.MatchLabels, svc.file: svcSel, pdb.file: pdbSel.MatchLabels} {
		if len(sel) == 0 {
			t.Errorf("%s: empty selector", name)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("%s: selector %s=%s does not match the pod template's labels %v", name, k, v, labels)
			}
		}
	}
	if len(svc.Spec.Ports) == 0 {
		t.Errorf("%s: no ports", svc.file)
	}
	for _, p := range svc.Spec.Ports {
		if portOf(p.TargetPort) != port {
			t.Errorf("%s: port %d goes to targetPort %s, not the listener's port %d", svc.file, p.Port, p.TargetPort, port)
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return "unset"
	}
	return *p
}
