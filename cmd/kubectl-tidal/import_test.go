package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/yaml"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// Session files of each format, holding the canary tokens.
var (
	tidalapiFile = `{"token_type": {"data": "Bearer"}, "session_id": {"data": "s-1"}, "access_token": {"data": "` +
		canaryAccess + `"}, "refresh_token": {"data": "` + canaryRefresh + `"}, "is_pkce": {"data": false}}`
	tidalDLNGFile = `{"token_type": "Bearer", "access_token": "` + canaryAccess + `", "refresh_token": "` +
		canaryRefresh + `", "expiry_time": 1796389506.25}`
	flatFile = `{"access_token": "` + canaryAccess + `", "refresh_token": "` + canaryRefresh +
		`", "user_id": 4711, "expires_at": 1796389506, "client_id": "` + testClientID + `"}`
)

func TestImportEachFormat(t *testing.T) {
	tests := []struct {
		name, file string
		args       []string
	}{
		{"tidalapi", tidalapiFile, []string{"--client-id", testClientID}},
		{"tidal-dl-ng", tidalDLNGFile, []string{"--client-id", testClientID}},
		{"flat, client id from the file", flatFile, nil},
		{"flat, the same client id given", flatFile, []string{"--client-id", testClientID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClient(nil)
			path := writeFile(t, "session.json", tc.file)
			r := execute(t, c, "", append([]string{"import", path, "--name", "alice", "-n", testNamespace}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("import failed: %v\n%s", r.err, r.stderr)
			}
			wantOut := "secret/alice-credentials created\ntidalsession.sessions.tidal-mcp.dev/alice created\n"
			if r.stdout != wantOut {
				t.Errorf("stdout = %q, want %q", r.stdout, wantOut)
			}
			assertImported(t, c, "alice", "alice-tidal-token", "")
		})
	}
}

// assertImported checks the Secret and TidalSession an import of the canary file created.
func assertImported(t *testing.T, c client.Client, name, outputSecret, clientSecret string) {
	t.Helper()
	ctx := context.Background()
	secret := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name + "-credentials"}, secret); err != nil {
		t.Fatalf("credentials Secret: %v", err)
	}
	if string(secret.Data["refresh_token"]) != canaryRefresh {
		t.Error("the Secret's refresh_token is not the file's refresh token")
	}
	if got := string(secret.Data["client_id"]); got != testClientID {
		t.Errorf("client_id = %q, want %q", got, testClientID)
	}
	if got, ok := secret.Data["client_secret"]; string(got) != clientSecret || ok != (clientSecret != "") {
		t.Errorf("client_secret present %t, want %t, or differs", ok, clientSecret != "")
	}
	wantKeys := 2
	if clientSecret != "" {
		wantKeys = 3
	}
	if len(secret.Data) != wantKeys {
		t.Errorf("the Secret has keys beyond the credentials: %d keys", len(secret.Data))
	}
	for k, v := range secret.Data {
		if strings.Contains(string(v), canaryAccess) {
			t.Errorf("key %s holds the access token, which the operator does not need", k)
		}
	}
	if secret.Labels[createdByLabel] != createdByValue || secret.Annotations[importIDAnnotation] == "" {
		t.Errorf("Secret metadata: labels %v, annotations %v", secret.Labels, secret.Annotations)
	}

	ts := &sessionsv1alpha1.TidalSession{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: testNamespace, Name: name}, ts); err != nil {
		t.Fatalf("TidalSession: %v", err)
	}
	if ts.Spec.CredentialsSecretRef.Name != secret.Name || ts.Spec.OutputSecret.Name != outputSecret {
		t.Errorf("spec refers to %q and %q", ts.Spec.CredentialsSecretRef.Name, ts.Spec.OutputSecret.Name)
	}
	if ts.Annotations[importIDAnnotation] != secret.Annotations[importIDAnnotation] {
		t.Error("the two objects carry different import ids")
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Kind != "TidalSession" ||
		secret.OwnerReferences[0].Name != name || secret.OwnerReferences[0].UID != ts.UID {
		t.Errorf("Secret owners = %+v, want the TidalSession", secret.OwnerReferences)
	}
}

func TestImportFromStdinWithClientSecret(t *testing.T) {
	c := newFakeClient(nil)
	secretFile := writeFile(t, "client-secret", canaryClientSecret+"\n")
	r := execute(t, c, tidalapiFile, "import", "-", "--name", "bob", "-n", testNamespace,
		"--client-id", testClientID, "--client-secret-file", secretFile, "--output-secret", "bob-token")
	if r.err != nil {
		t.Fatalf("import failed: %v\n%s", r.err, r.stderr)
	}
	assertImported(t, c, "bob", "bob-token", canaryClientSecret)
}

func TestImportOutputMasksValues(t *testing.T) {
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			c := newFakeClient(nil)
			secretFile := writeFile(t, "client-secret", canaryClientSecret)
			r := execute(t, c, flatFile, "import", "-", "--name", "carol", "-n", testNamespace,
				"--client-secret-file", secretFile, "-o", format)
			if r.err != nil {
				t.Fatalf("import failed: %v\n%s", r.err, r.stderr)
			}
			list := decodeList(t, r.stdout)
			assertMaskedList(t, list, "carol")
			assertImported(t, c, "carol", "carol-tidal-token", canaryClientSecret)
		})
	}
}

// printedList is the List import prints with -o json|yaml.
type printedList struct {
	Kind  string `json:"kind"`
	Items []struct {
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Data       map[string]string `json:"data"`
		StringData map[string]string `json:"stringData"`
		Spec       json.RawMessage   `json:"spec"`
	} `json:"items"`
}

func decodeList(t *testing.T, out string) printedList {
	t.Helper()
	var list printedList
	if err := yaml.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("output is neither JSON nor YAML: %v\n%s", err, out)
	}
	return list
}

func assertMaskedList(t *testing.T, list printedList, name string) {
	t.Helper()
	if list.Kind != "List" || len(list.Items) != 2 {
		t.Fatalf("printed %s with %d items, want a List of 2", list.Kind, len(list.Items))
	}
	secret, ts := list.Items[0], list.Items[1]
	if secret.Kind != "Secret" || secret.Metadata.Name != name+"-credentials" {
		t.Errorf("first item is %s %s", secret.Kind, secret.Metadata.Name)
	}
	if len(secret.Data) != 0 {
		t.Errorf("the printed Secret has data: %d keys", len(secret.Data))
	}
	for _, k := range []string{"refresh_token", "client_secret"} {
		if v, ok := secret.StringData[k]; ok && v != masked {
			t.Errorf("%s printed unmasked", k)
		}
	}
	if secret.StringData["refresh_token"] != masked {
		t.Errorf("refresh_token printed as %q, want %q", secret.StringData["refresh_token"], masked)
	}
	if secret.StringData["client_id"] != testClientID {
		t.Errorf("client_id printed as %q, want it in clear", secret.StringData["client_id"])
	}
	if ts.Kind != "TidalSession" || ts.Metadata.Name != name || !strings.Contains(string(ts.Spec), name+"-credentials") {
		t.Errorf("second item is %s %s with spec %s", ts.Kind, ts.Metadata.Name, ts.Spec)
	}
}

func TestImportDryRunCreatesNothing(t *testing.T) {
	for _, mode := range []string{"--dry-run", "--dry-run=server", "--dry-run=client"} {
		t.Run(mode, func(t *testing.T) {
			var calls []string
			c := newFakeClient(&interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					o := &client.CreateOptions{}
					o.ApplyOptions(opts)
					calls = append(calls, obj.GetObjectKind().GroupVersionKind().Kind+" dryRun="+strings.Join(o.DryRun, ","))
					return c.Create(ctx, obj, opts...)
				},
			})
			r := execute(t, c, flatFile, "import", "-", "--name", "dora", "-n", testNamespace, mode)
			if r.err != nil {
				t.Fatalf("import failed: %v\n%s", r.err, r.stderr)
			}
			assertMaskedList(t, decodeList(t, r.stdout), "dora")
			assertNothingCreated(t, c, "dora")
			for _, call := range calls {
				if !strings.HasSuffix(call, "dryRun=All") {
					t.Errorf("a create without dry run: %s", call)
				}
			}
			// A client dry run asks the API server nothing; a server one validates both objects.
			wantCalls := 2
			if mode == "--dry-run=client" {
				wantCalls = 0
			}
			if len(calls) != wantCalls {
				t.Errorf("%d creates, want %d: %v", len(calls), wantCalls, calls)
			}
		})
	}
}

func TestImportDryRunOutputs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dry-run", "-o", "name"}, "secret/dora-credentials\ntidalsession.sessions.tidal-mcp.dev/dora\n"},
		{[]string{"--dry-run", "-o", "jsonpath={.items[0].stringData.refresh_token}"}, masked},
	} {
		c := newFakeClient(nil)
		r := execute(t, c, flatFile, append([]string{"import", "-", "--name", "dora", "-n", testNamespace}, tc.args...)...)
		if r.err != nil || r.stdout != tc.want {
			t.Errorf("%v: stdout %q, err %v; want %q", tc.args, r.stdout, r.err, tc.want)
		}
		assertNothingCreated(t, c, "dora")
	}
	// Without -o a dry run shows the objects, masked.
	r := execute(t, newFakeClient(nil), flatFile, "import", "-", "--name", "dora", "-n", testNamespace, "--dry-run")
	if r.err != nil {
		t.Fatal(r.err)
	}
	assertMaskedList(t, decodeList(t, r.stdout), "dora")
}

func assertNothingCreated(t *testing.T, c client.Client, name string) {
	t.Helper()
	ctx := context.Background()
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets); err != nil {
		t.Fatal(err)
	}
	var sessions sessionsv1alpha1.TidalSessionList
	if err := c.List(ctx, &sessions); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if s.Labels[createdByLabel] == createdByValue {
			t.Errorf("Secret %s was created", s.Name)
		}
	}
	for _, s := range sessions.Items {
		if s.Name == name {
			t.Errorf("TidalSession %s was created", s.Name)
		}
	}
}

func TestImportRefusals(t *testing.T) {
	unmanaged := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "erin-tidal-token"}}
	otherSessions := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "shared-token",
		Labels: map[string]string{sessionsv1alpha1.ManagedByLabel: sessionsv1alpha1.ManagedByValue,
			sessionsv1alpha1.SessionLabel: "frank"}}}
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: "erin-credentials"},
		Data: map[string][]byte{"refresh_token": []byte("someone else's")}}
	tests := []struct {
		name  string
		stdin string
		objs  []client.Object
		args  []string
		want  string
	}{
		{"malformed file", `{"refresh_token": ` + canaryRefresh + `}`, nil, nil, "not valid JSON"},
		{"refresh token missing", `{"access_token": "` + canaryAccess + `"}`, nil, nil, "refresh_token: is missing"},
		{"operator's own output", `{"token_type": {"data": "Bearer"}, "access_token": {"data": "` + canaryAccess +
			`"}, "refresh_token": {"data": null}}`, nil, nil, "as tidalapi: refresh_token: is null"},
		{"no client id", tidalDLNGFile, nil, []string{"--client-id="}, "pass --client-id"},
		{"contradicting client id", flatFile, nil, []string{"--client-id", "other"}, "differs from the client id"},
		{"name too long", flatFile, nil, []string{"--name", strings.Repeat("a", 64)}, "no more than 63 characters"},
		{"name malformed", flatFile, nil, []string{"--name", "Erin"}, "RFC 1123"},
		{"output Secret is the credentials Secret", flatFile, nil, []string{"--output-secret", "erin-credentials"},
			"is the name of the credentials Secret"},
		{"output Secret not the operator's", flatFile, []client.Object{unmanaged}, nil, "not managed by the operator"},
		{"output Secret of another session", flatFile, []client.Object{otherSessions},
			[]string{"--output-secret", "shared-token"}, `belongs to TidalSession "frank"`},
		{"credentials Secret exists", flatFile, []client.Object{existing}, nil, `Secret "erin-credentials" already exists`},
		{"bad dry-run mode", flatFile, nil, []string{"--dry-run=maybe"}, "--dry-run must be"},
		{"bad output", flatFile, nil, []string{"-o", "table"}, "unable to match a printer"},
		{"both from stdin", flatFile, nil, []string{"--client-secret-file", "-"}, "cannot both be read from standard input"},
		{"missing file", "", nil, []string{"/nonexistent/session.json"}, "failed to read session file: open /nonexistent/session.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClient(nil, tc.objs...)
			args := []string{"import", "-", "--name", "erin", "-n", testNamespace, "--client-id", testClientID}
			if len(tc.args) > 0 && strings.HasPrefix(tc.args[0], "/") {
				args[1], tc.args = tc.args[0], tc.args[1:]
			}
			r := execute(t, c, tc.stdin, append(args, tc.args...)...)
			if r.err == nil {
				t.Fatal("import succeeded")
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
			assertNothingCreated(t, c, "erin")
			if tc.name == "credentials Secret exists" {
				got := &corev1.Secret{}
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(existing), got); err != nil ||
					string(got.Data["refresh_token"]) != "someone else's" {
					t.Errorf("the existing Secret was changed: %v", err)
				}
			}
		})
	}
}

// failSessionCreate makes the (non-dry-run) TidalSession create fail with err, after
// creating the session when created is true (an answer lost on the way back).
func failSessionCreate(err error, created bool) *interceptor.Funcs {
	return &interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			o := &client.CreateOptions{}
			o.ApplyOptions(opts)
			if _, ok := obj.(*sessionsv1alpha1.TidalSession); !ok || len(o.DryRun) > 0 {
				return c.Create(ctx, obj, opts...)
			}
			if created {
				if cerr := c.Create(ctx, obj, opts...); cerr != nil {
					return cerr
				}
			}
			return err
		},
	}
}

func TestImportRollsBackTheSecret(t *testing.T) {
	gr := schema.GroupResource{Group: sessionsv1alpha1.GroupVersion.Group, Resource: "tidalsessions"}
	tests := []struct {
		name string
		err  error
	}{
		{"refused", apierrors.NewForbidden(gr, "gina", errors.New("quota says no"))},
		{"no answer", errors.New("connection reset by peer")},
		{"timeout, not created", apierrors.NewTimeoutError("took too long", 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClient(failSessionCreate(tc.err, false))
			r := execute(t, c, flatFile, "import", "-", "--name", "gina", "-n", testNamespace)
			if r.err == nil {
				t.Fatal("import succeeded")
			}
			if !strings.Contains(r.stderr, `Secret "gina-credentials" created for it was deleted again`) {
				t.Errorf("stderr does not report the rollback: %s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout is not empty: %q", r.stdout)
			}
			assertNothingCreated(t, c, "gina")
		})
	}
}

func TestImportAmbiguousFailureThatCreated(t *testing.T) {
	c := newFakeClient(failSessionCreate(apierrors.NewTimeoutError("took too long", 1), true))
	r := execute(t, c, flatFile, "import", "-", "--name", "hank", "-n", testNamespace)
	if r.err != nil {
		t.Fatalf("import failed although the TidalSession was created: %v", r.err)
	}
	assertImported(t, c, "hank", "hank-tidal-token", "")
}

func TestImportRedactsEchoedValues(t *testing.T) {
	// An admission webhook that quotes what it refused must not get a token printed.
	c := newFakeClient(&interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if s, ok := obj.(*corev1.Secret); ok {
				return errors.New("admission webhook denied the request: refresh_token " +
					string(s.Data["refresh_token"]) + " looks odd; client_secret " + string(s.Data["client_secret"]))
			}
			return c.Create(ctx, obj, opts...)
		},
	})
	secretFile := writeFile(t, "client-secret", canaryClientSecret)
	r := execute(t, c, tidalapiFile, "import", "-", "--name", "ivy", "-n", testNamespace, "--client-id", testClientID,
		"--client-secret-file", secretFile)
	if r.err == nil {
		t.Fatal("import succeeded")
	}
	if !strings.Contains(r.stderr, "refresh_token <masked> looks odd; client_secret <masked>") {
		t.Errorf("stderr does not show the masked message: %s", r.stderr)
	}
	assertNothingCreated(t, c, "ivy")
}

func TestParseClientSecret(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{canaryClientSecret + "\n", canaryClientSecret, ""},
		{canaryClientSecret + "\r\n", canaryClientSecret, ""},
		{"\n", "", "is empty"},
		{canaryClientSecret + " x", "", "alone on one line"},
		{canaryClientSecret + "\n" + canaryClientSecret, "", "alone on one line"},
		{strings.Repeat("x", maxClientSecretFile+1), "", "larger than"},
	} {
		got, err := parseClientSecret([]byte(tc.in))
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseClientSecret: got value %t, error %v; want error %q", got == tc.want, err, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), canaryMarker) {
			t.Errorf("error quotes the secret: %v", err)
		}
	}
}

func TestImportWithoutPermissionToReadSecrets(t *testing.T) {
	c := newFakeClient(&interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*metav1.PartialObjectMetadata); ok {
				return apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, key.Name, errors.New("no get"))
			}
			return c.Get(ctx, key, obj, opts...)
		},
	})
	r := execute(t, c, flatFile, "import", "-", "--name", "jill", "-n", testNamespace)
	if r.err != nil {
		t.Fatalf("import failed: %v", r.err)
	}
	if !strings.Contains(r.stderr, `warning: not allowed to check whether output Secret "jill-tidal-token" exists`) {
		t.Errorf("stderr: %q", r.stderr)
	}
	assertImported(t, c, "jill", "jill-tidal-token", "")
}
