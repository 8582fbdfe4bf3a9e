package vigil

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestLoadAndDiff(t *testing.T) {
	root := t.TempDir()
	hostDir := t.TempDir()
	motd := filepath.Join(hostDir, "motd")
	writeFile(t, motd, "bye\n")
	if err := os.MkdirAll(filepath.Join(root, "hosts", "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "hosts", "web", "app.yaml"), `apiVersion: vigil/v1
kind: File
metadata: {name: motd, labels: {tier: web}}
spec: {path: `+motd+`, content: "hello\n", selfHeal: true}
---
apiVersion: vigil/v1
kind: File
metadata: {name: gone}
spec: {path: `+filepath.Join(hostDir, "gone")+`, content: "x"}
`)
	m, err := LoadManifest(ManifestOptions{Root: root, Sources: []string{"hosts/web"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rs := m.Resources()
	if len(rs) != 2 || rs[0].Kind != "File" || rs[0].Name != "motd" || !rs[0].SelfHeal ||
		rs[0].File != "hosts/web/app.yaml" || rs[0].Line != 1 || rs[0].Labels["tier"] != "web" ||
		!strings.Contains(rs[0].SpecJSON, `"path":"`+motd+`"`) || rs[1].Line != 6 {
		t.Fatalf("resources = %+v", rs)
	}
	d, err := m.Diff("web-01", "abc123")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Items) != 2 || d.Drifted != 2 || d.Errors != 0 {
		t.Fatalf("drift = %+v", d)
	}
	it := d.Items[0]
	if it.Target != "web-01/File/motd" || it.Status != "drifted" || len(it.Diff) == 0 ||
		it.Diff[0].Field != "sha256" || it.HealJSON == "" || !strings.Contains(it.HealJSON, `"restore_file"`) {
		t.Fatalf("motd item = %+v", it)
	}
	if d.Items[1].Status != "missing" || d.Items[1].HealJSON != "" {
		t.Fatalf("gone item = %+v", d.Items[1])
	}
	var body struct {
		Source   string            `json:"source"`
		Revision string            `json:"revision"`
		Items    []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(d.Body, &body); err != nil || body.Source != "web-01" ||
		body.Revision != "abc123" || len(body.Items) != 2 {
		t.Fatalf("drift body %s: %v", d.Body, err)
	}
	// in sync once the file holds the desired bytes
	writeFile(t, motd, "hello\n")
	d, err = m.Diff("web-01", "abc123")
	if err != nil || d.Items[0].Status != "in_sync" || d.Drifted != 1 {
		t.Fatalf("after the fix: %+v, %v", d, err)
	}
	desired, err := m.DesiredBody("web-01", "abc123")
	if err != nil || !strings.Contains(string(desired), `"target":"web-01/File/motd"`) {
		t.Fatalf("desired body %s, %v", desired, err)
	}
}

func TestManifestErrorsAreLocated(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a.yaml"), "apiVersion: vigil/v1\nkind: File\nmetadata: {name: m}\n"+
		"spec: {path: /tmp/x, content: \"a\", mode: rw}\n")
	_, err := LoadManifest(ManifestOptions{Root: root})
	ve := asError(t, err)
	if ve.Code != ErrValue || ve.File != "a.yaml" || ve.Line != 4 || !strings.HasPrefix(ve.Message, "a.yaml:4:") ||
		!strings.Contains(ve.Message, "spec.mode") {
		t.Fatalf("bad mode = %d %q at %s:%d", ve.Code, ve.Message, ve.File, ve.Line)
	}
	_, err = LoadManifest(ManifestOptions{Root: root, Sources: []string{"../etc"}})
	if !errors.Is(err, ErrPerm) {
		t.Fatalf("escaping source = %v", err)
	}
	_, err = LoadManifest(ManifestOptions{Root: filepath.Join(root, "missing")})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing root = %v", err)
	}
}

// A Policy resource may name a kind written in Go, through PolicyTypes.
func TestManifestGoPolicyKind(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "p.yaml"), "apiVersion: vigil/v1\nkind: Policy\nmetadata: {name: checkout-errors}\n"+
		"spec: {kind: error_rate, metric: error_rate, action: scale_up, limit: 0.1}\n")
	_, err := LoadManifest(ManifestOptions{Root: root})
	if ve := asError(t, err); ve.Code != ErrUnsupported || ve.File != "p.yaml" || !strings.Contains(ve.Message, "error_rate") {
		t.Fatalf("unknown kind = %d %q at %s", ve.Code, ve.Message, ve.File)
	}
	reg := newPolicyTypes(t)
	defer reg.Close()
	m, err := LoadManifest(ManifestOptions{Root: root, PolicyTypes: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	body, err := m.PoliciesBody("web-01", "r1")
	if err != nil || !strings.Contains(string(body), `"name":"checkout-errors"`) ||
		!strings.Contains(string(body), `"kind":"error_rate"`) {
		t.Fatalf("policies body %s, %v", body, err)
	}
	d, err := m.Diff("web-01", "r1")
	if err != nil || len(d.Items) != 0 {
		t.Fatalf("a Policy has no observed state: %+v, %v", d, err)
	}
	m.Close()
	if _, err := m.Diff("web-01", "r1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Diff after Close = %v", err)
	}
}
