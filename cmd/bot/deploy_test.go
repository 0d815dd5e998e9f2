package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"

	"github.com/compromised-responder/bot/internal/slackui"
)

// The deploy files cannot be run here (no Docker, no cluster): these tests check what can be
// checked without them, so a deploy that would not start, or would leak, fails in CI.

const repoRoot = "../.."

func readRepo(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs parses every document of a YAML file (strictly: a duplicate key is an error).
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readRepo(t, path)))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML documents", path)
	}
	return docs
}

// dig walks maps and lists: dig(v, "spec", "template", "containers", 0, "image").
func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path[:i], k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path[:i], k)
			}
			v = l[k]
		}
	}
	return v
}

func TestDeployYAMLParses(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	top, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "*.y*ml"))
	files = append(files, top...)
	if len(files) < 5 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot, f)
		for _, d := range yamlDocs(t, rel) {
			if strings.HasPrefix(rel, "deploy/kubernetes/") && (d["apiVersion"] == nil || d["kind"] == nil || dig(t, d, "metadata", "name") == nil) {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name: %v", rel, d)
			}
		}
	}
}

// Every Kubernetes object decodes strictly into its API type (k8s.io/api), as the API server's
// strict field validation does: a misspelt or misplaced field, or a value of the wrong type,
// would make `kubectl apply` fail.
func TestKubernetesObjectsMatchTheirAPITypes(t *testing.T) {
	types := map[string]func() any{
		"apps/v1 Deployment":            func() any { return &appsv1.Deployment{} },
		"apps/v1 StatefulSet":           func() any { return &appsv1.StatefulSet{} },
		"v1 Service":                    func() any { return &corev1.Service{} },
		"v1 ConfigMap":                  func() any { return &corev1.ConfigMap{} },
		"policy/v1 PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
	}
	for key, obj := range k8s(t) {
		newObj := types[obj["apiVersion"].(string)+" "+obj["kind"].(string)]
		if newObj == nil {
			t.Errorf("%s: apiVersion %v has no API type in this test: add it", key, obj["apiVersion"])
			continue
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(newObj()); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
}

// k8s indexes the Kubernetes objects by kind/name.
func k8s(t *testing.T) map[string]map[string]any {
	t.Helper()
	objs := map[string]map[string]any{}
	files, _ := filepath.Glob(filepath.Join(repoRoot, "deploy", "kubernetes", "*.yaml"))
	for _, f := range files {
		rel, _ := filepath.Rel(repoRoot, f)
		for _, d := range yamlDocs(t, rel) {
			objs[d["kind"].(string)+"/"+dig(t, d, "metadata", "name").(string)] = d
		}
	}
	return objs
}

func TestKubernetesDeployStarts(t *testing.T) {
	objs := k8s(t)
	dep := objs["Deployment/compromised-bot"]
	if dep == nil {
		t.Fatalf("no Deployment compromised-bot in %v", objs)
	}
	pod := dig(t, dep, "spec", "template", "spec")
	labels := dig(t, dep, "spec", "template", "metadata", "labels")
	if d := cmp.Diff(dig(t, dep, "spec", "selector", "matchLabels"), labels); d != "" {
		t.Errorf("selector does not match the pod labels:\n%s", d)
	}
	// The kubelet refuses runAsNonRoot with a non-numeric image user: the pod names the numbers.
	sc := dig(t, pod, "securityContext")
	if dig(t, sc, "runAsNonRoot") != true || dig(t, sc, "runAsUser") != imageUID(t) || dig(t, sc, "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("pod securityContext %v: want runAsNonRoot, runAsUser %v (the image's USER), seccompProfile RuntimeDefault", sc, imageUID(t))
	}
	if g, _ := dig(t, pod, "terminationGracePeriodSeconds").(int); g < 40 {
		t.Errorf("terminationGracePeriodSeconds %d: running steps get 25 s, want ≥ 40", g)
	}
	anti := dig(t, pod, "affinity", "podAntiAffinity", "preferredDuringSchedulingIgnoredDuringExecution", 0, "podAffinityTerm")
	if d := cmp.Diff(dig(t, anti, "labelSelector", "matchLabels"), labels); d != "" || dig(t, anti, "topologyKey") == nil {
		t.Errorf("pod anti-affinity does not spread the bot's own pods: %v", anti)
	}
	c := dig(t, pod, "containers", 0)
	image, _ := dig(t, c, "image").(string)
	if m := regexp.MustCompile(`^[a-z0-9.\-/:]+/[a-z0-9.\-/]+:(v?\d+\.\d+\.\d+)$`).FindStringSubmatch(image); m == nil {
		t.Errorf("image %q: want a registry reference with a version tag", image)
	}
	if dig(t, c, "resources", "limits", "memory") == nil || dig(t, c, "resources", "limits", "cpu") == nil {
		t.Errorf("no resource limits: %v", dig(t, c, "resources"))
	}
	env := map[string]any{}
	for _, e := range dig(t, c, "env").([]any) {
		env[dig(t, e, "name").(string)] = e
	}
	if env["GOMEMLIMIT"] == nil {
		t.Errorf("no GOMEMLIMIT beside the memory limit")
	}
	if v, _ := dig(t, env["REDIS_URL"], "value").(string); !strings.Contains(v, ":$(REDIS_PASSWORD)@") {
		t.Errorf("REDIS_URL %q does not carry the Redis password", v)
	}
	if dig(t, c, "readinessProbe", "httpGet", "path") != "/readyz" || dig(t, c, "livenessProbe", "httpGet", "path") != "/healthz" {
		t.Errorf("probes: %v %v", dig(t, c, "readinessProbe"), dig(t, c, "livenessProbe"))
	}
	// Plain config in the ConfigMap, secrets only in the Secret (made by hand, never in the repo).
	var refs []string
	for _, ef := range dig(t, c, "envFrom").([]any) {
		for k, v := range ef.(map[string]any) {
			refs = append(refs, k+"/"+dig(t, v, "name").(string))
		}
	}
	sort.Strings(refs)
	if d := cmp.Diff([]string{"configMapRef/compromised-bot", "secretRef/compromised-bot"}, refs); d != "" {
		t.Errorf("envFrom:\n%s", d)
	}
	cm := objs["ConfigMap/compromised-bot"]
	if cm == nil {
		t.Fatal("no ConfigMap compromised-bot")
	}
	known := map[string]bool{}
	for _, v := range configVars(t) {
		known[v] = true
	}
	for k := range dig(t, cm, "data").(map[string]any) {
		if isSecretVar(k) || !known[k] {
			t.Errorf("ConfigMap key %s: a secret, or not a variable the bot reads", k)
		}
	}
	for k := range objs {
		if strings.HasPrefix(k, "Secret/") {
			t.Errorf("%s is in the repository: secrets are created by hand", k)
		}
	}
	pdb := objs["PodDisruptionBudget/compromised-bot"]
	if pdb == nil || cmp.Diff(dig(t, pdb, "spec", "selector", "matchLabels"), labels) != "" {
		t.Errorf("no PodDisruptionBudget for the bot's pods: %v", pdb)
	}

	// Redis: a password, a probe that uses it, and its data on a PersistentVolumeClaim.
	rs := objs["StatefulSet/compromised-redis"]
	if rs == nil {
		t.Fatal("no StatefulSet compromised-redis")
	}
	rc := dig(t, rs, "spec", "template", "spec", "containers", 0)
	cmdline := strings.Join(toStrings(dig(t, rc, "command")), " ")
	if !strings.Contains(cmdline, "requirepass") || strings.Contains(cmdline, "--requirepass") {
		t.Errorf("redis command %q: want requirepass from a file (not on the command line)", cmdline)
	}
	probe := strings.Join(toStrings(dig(t, rc, "readinessProbe", "exec", "command")), " ")
	if !strings.Contains(probe, "REDISCLI_AUTH") || !strings.Contains(probe, "ping") {
		t.Errorf("redis readiness probe %q", probe)
	}
	if dig(t, rs, "spec", "volumeClaimTemplates", 0, "metadata", "name") != "data" {
		t.Errorf("redis has no PVC for /data")
	}
	if dig(t, rs, "spec", "template", "spec", "securityContext", "seccompProfile", "type") != "RuntimeDefault" {
		t.Errorf("redis pod without seccompProfile RuntimeDefault")
	}
	conf := dig(t, objs["ConfigMap/compromised-redis"], "data", "redis.conf").(string)
	for _, want := range []string{"appendonly yes", "appendfsync always", "maxmemory-policy noeviction"} {
		if !strings.Contains(conf, want) {
			t.Errorf("redis.conf in the ConfigMap lacks %q", want)
		}
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, len(l))
	for i, x := range l {
		out[i], _ = x.(string)
	}
	return out
}

func isSecretVar(k string) bool {
	for _, v := range envOnly {
		if v.name == k && v.secret {
			return true
		}
	}
	return false
}

// imageUID is the numeric user of the production image (the last stage's USER uid:gid).
func imageUID(t *testing.T) int {
	t.Helper()
	stages := dockerStages(t)
	user := stages[len(stages)-1].user
	m := regexp.MustCompile(`^(\d+):(\d+)$`).FindStringSubmatch(user)
	if m == nil {
		t.Fatalf("production image USER %q: want numeric uid:gid", user)
	}
	n := 0
	for _, ch := range m[1] {
		n = n*10 + int(ch-'0')
	}
	return n
}

type dockerStage struct {
	name, user, healthcheck string
	copies                  []string
}

func dockerStages(t *testing.T) []dockerStage {
	t.Helper()
	var stages []dockerStage
	sc := bufio.NewScanner(bytes.NewReader(readRepo(t, "deploy/Dockerfile")))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			s := dockerStage{}
			if len(f) == 4 && strings.EqualFold(f[2], "AS") {
				s.name = f[3]
			}
			stages = append(stages, s)
		case "USER":
			stages[len(stages)-1].user = f[1]
		case "HEALTHCHECK":
			stages[len(stages)-1].healthcheck = line
		case "COPY":
			stages[len(stages)-1].copies = append(stages[len(stages)-1].copies, line)
		}
	}
	return stages
}

func TestDockerImage(t *testing.T) {
	stages := dockerStages(t)
	prod := stages[len(stages)-1] // what `docker build` without --target makes
	if imageUID(t) == 0 {
		t.Error("production image runs as root")
	}
	if !strings.Contains(prod.healthcheck, `"bot", "healthcheck"`) && !strings.Contains(prod.healthcheck, `/bot", "healthcheck"`) {
		t.Errorf("production image HEALTHCHECK %q: want bot healthcheck", prod.healthcheck)
	}
	for _, c := range prod.copies {
		if strings.Contains(c, "pbxsim") || strings.Contains(c, "/drill") {
			t.Errorf("production image copies the simulator: %s", c)
		}
	}
	prodLine := regexp.MustCompile(`(CGO_ENABLED=0 )?go build [^\n]*-o /out/bot \./cmd/bot`).Find(readRepo(t, "deploy/Dockerfile"))
	if !strings.Contains(string(prodLine), "-tags nosim") {
		t.Error("the production bot is not built with -tags nosim")
	}
	// The process tests and benchmarks build the bot as the image does (buildBot).
	for _, flag := range []string{"-trimpath", "-tags nosim", `-ldflags "-s -w`, "CGO_ENABLED=0"} {
		if !strings.Contains(string(prodLine), flag) {
			t.Errorf("the production bot's build (%q) has no %s, which buildBot's productionBuild passes: make them agree", prodLine, flag)
		}
	}
	// The nosim build compiles, and has no simulator in it.
	deps, err := exec.Command("go", "list", "-tags", "nosim", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags nosim: %v\n%s", err, deps)
	}
	for _, pkg := range []string{"/internal/netsapiens/nstest", "/internal/testenv", "/internal/slackfake"} {
		if strings.Contains(string(deps), pkg+"\n") {
			t.Errorf("the production (-tags nosim) build links %s: a simulator or test support", pkg)
		}
	}
	if out, err := exec.Command("go", "vet", "-tags", "nosim", ".").CombinedOutput(); err != nil {
		t.Errorf("go vet -tags nosim: %v\n%s", err, out)
	}
	// `COPY . .` must not take a filled-in .env into the build context.
	ignore := string(readRepo(t, ".dockerignore"))
	if !regexp.MustCompile(`(?m)^(\*\*/)?\.env$`).MatchString(ignore) {
		t.Errorf(".dockerignore does not exclude .env:\n%s", ignore)
	}
}

func TestComposeFile(t *testing.T) {
	c := yamlDocs(t, "deploy/docker-compose.yml")[0]
	bot, redis := dig(t, c, "services", "bot"), dig(t, c, "services", "redis")
	if dig(t, bot, "stop_grace_period") != "40s" {
		t.Errorf("bot stop_grace_period %v: want 40s (steps get 25 s; Docker's default is 10 s)", dig(t, bot, "stop_grace_period"))
	}
	if dig(t, bot, "depends_on", "redis", "condition") != "service_healthy" {
		t.Errorf("bot does not wait for a healthy Redis: %v", dig(t, bot, "depends_on"))
	}
	if hc := strings.Join(toStrings(dig(t, bot, "healthcheck", "test")), " "); !strings.Contains(hc, "bot healthcheck") {
		t.Errorf("bot healthcheck %q", hc)
	}
	if hc := strings.Join(toStrings(dig(t, redis, "healthcheck", "test")), " "); !strings.Contains(hc, "REDISCLI_AUTH") || !strings.Contains(hc, "ping") {
		t.Errorf("redis healthcheck %q", hc)
	}
	if cmdline := strings.Join(toStrings(dig(t, redis, "command")), " "); !strings.Contains(cmdline, "requirepass") || strings.Contains(cmdline, "--requirepass") {
		t.Errorf("redis command %q: want requirepass from a file", cmdline)
	}
	if u, _ := dig(t, bot, "environment", "REDIS_URL").(string); !strings.Contains(u, ":${REDIS_PASSWORD}@redis:") {
		t.Errorf("bot REDIS_URL %q does not carry the password", u)
	}
	if dig(t, bot, "build", "target") != "bot" || dig(t, bot, "profiles") != nil {
		t.Errorf("bot service must build the production target and start by default")
	}
	drill := dig(t, c, "services", "drill")
	if drill == nil || cmp.Diff([]string{"drill"}, toStrings(dig(t, drill, "profiles"))) != "" || dig(t, drill, "build", "target") != "drill" {
		t.Errorf("no drill service in a drill profile built from the drill target: %v", drill)
	}
	for name, s := range dig(t, c, "services").(map[string]any) {
		if toStrings(dig(t, s, "profiles")) == nil && name != "bot" && name != "redis" {
			t.Errorf("service %s starts by default", name)
		}
	}
}

// Every variable the bot reads is in deploy/example.env (set or commented out), and in the README.
func TestExampleEnvAndREADMEListEveryVariable(t *testing.T) {
	env := string(readRepo(t, "deploy/example.env"))
	readme := string(readRepo(t, "README.md"))
	for _, v := range configVars(t) {
		if !regexp.MustCompile(`(?m)^(# )?` + v + `=`).MatchString(env) {
			t.Errorf("deploy/example.env lacks %s", v)
		}
		if !strings.Contains(readme, "`"+v+"`") {
			t.Errorf("README.md lacks `%s`", v)
		}
	}
	for _, line := range strings.Split(env, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(k, "#") && isSecretVar(k) && v != "" && !strings.Contains(v, "REPLACE-ME") {
			t.Errorf("deploy/example.env holds a value for the secret %s", k)
		}
	}
}

// The Slack app asks for exactly the bot scopes the code's Web API calls need (slackui.WebAPIScopes).
func TestSlackManifestScopes(t *testing.T) {
	m := yamlDocs(t, "deploy/slack-app-manifest.yaml")[0]
	got := toStrings(dig(t, m, "oauth_config", "scopes", "bot"))
	sort.Strings(got)
	if d := cmp.Diff(slackui.BotScopes(), got); d != "" {
		t.Errorf("manifest bot scopes (-needed +manifest):\n%s", d)
	}
	if dig(t, m, "settings", "socket_mode_enabled") != true || dig(t, m, "settings", "interactivity", "is_enabled") != true {
		t.Error("the manifest must enable Socket Mode and interactivity")
	}
	if dig(t, m, "features", "slash_commands", 0, "command") != "/compromised" {
		t.Error("the manifest lacks the /compromised command")
	}
}

// The manifest declares the "Contain this user" message shortcut with the callback_id the app routes.
func TestSlackManifestShortcut(t *testing.T) {
	m := yamlDocs(t, "deploy/slack-app-manifest.yaml")[0]
	sc := dig(t, m, "features", "shortcuts", 0)
	if dig(t, sc, "type") != "message" || dig(t, sc, "callback_id") != slackui.ShortcutContain || dig(t, sc, "name") != "Contain this user" {
		t.Errorf("manifest shortcut: %v", sc)
	}
	if d, _ := dig(t, sc, "description").(string); d == "" || len(d) > 150 {
		t.Errorf("shortcut description %q: 1–150 characters", d)
	}
}
