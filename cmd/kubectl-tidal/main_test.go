package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Canary values: no output of the plugin may contain them, nor the marker they share.
const (
	canaryRefresh      = "CANARY-RT-5e1d0b.eyJhbGciOiJIUzI1NiJ9"
	canaryAccess       = "CANARY-AT-c47a21.eyJ1aWQiOjQ3MTF9"
	canaryClientSecret = "CANARY-CS-9b02f6"
	canaryMarker       = "CANARY"
	testNamespace      = "music"
	testClientID       = "exampleClientId1"
)

// result is what one run of the plugin printed.
type result struct {
	stdout, stderr string
	err            error
}

// execute runs the plugin as main does, against c, and fails the test if any output holds
// a canary.
func execute(t *testing.T, c client.Client, stdin string, args ...string) result {
	t.Helper()
	// Nothing may be read from the machine's own kubeconfig.
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	root, red := newRootCommand(streams, func() (client.Client, error) { return c, nil })
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err != nil {
		fmt.Fprintln(&errOut, "error: "+red.redact(err.Error()))
	}
	r := result{stdout: out.String(), stderr: errOut.String(), err: err}
	for _, c := range []string{canaryMarker, "5e1d0b", "c47a21", "9b02f6"} {
		if strings.Contains(r.stdout, c) || strings.Contains(r.stderr, c) {
			t.Errorf("output contains canary fragment %q:\nstdout: %s\nstderr: %s", c, r.stdout, r.stderr)
		}
	}
	return r
}

func newFakeClient(funcs *interceptor.Funcs, objs ...client.Object) client.WithWatch {
	b := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&sessionsv1alpha1.TidalSession{}).WithObjects(objs...)
	if funcs != nil {
		b = b.WithInterceptorFuncs(*funcs)
	}
	return b.Build()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRedactor(t *testing.T) {
	r := &redactor{}
	r.add(canaryRefresh, "short", canaryRefresh[:20], "")
	got := r.redact("a " + canaryRefresh + " b " + canaryRefresh[:20] + " short")
	if want := "a <masked> b <masked> short"; got != want {
		t.Errorf("redact = %q, want %q", got, want)
	}
}
