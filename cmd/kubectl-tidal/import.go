package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionfile"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
)

// Keys of the credentials Secret, as the operator reads them by default.
const (
	keyRefreshToken = "refresh_token"
	keyClientID     = "client_id"
	keyClientSecret = "client_secret"
)

// Metadata import puts on what it creates.
const (
	// createdByLabel lets a person find what import created, e.g. a credentials Secret left
	// behind when the plugin was killed between its two creates.
	createdByLabel = "app.kubernetes.io/created-by"
	createdByValue = "kubectl-tidal"
	// importIDAnnotation carries a random id per run on both objects, so that after an
	// ambiguous failure (a timeout) import can tell its own TidalSession from another's.
	importIDAnnotation = "sessions.tidal-mcp.dev/import-id"
)

// Dry-run modes, as kubectl names them.
const (
	dryRunNone   = "none"
	dryRunServer = "server"
	dryRunClient = "client"
)

// maxClientSecretFile bounds --client-secret-file: a client secret is a few dozen bytes.
const maxClientSecretFile = 4 << 10

// rollbackTimeout bounds the clean-up after a failure, which runs even when the command's
// context was cancelled by an interrupt.
const rollbackTimeout = 30 * time.Second

type importOptions struct {
	*globals
	printFlags *genericclioptions.PrintFlags

	file             string
	name             string
	clientID         string
	clientSecretFile string
	outputSecret     string
	dryRun           string
}

func newImportCommand(g *globals) *cobra.Command {
	o := &importOptions{globals: g, printFlags: genericclioptions.NewPrintFlags("created").WithTypeSetter(scheme)}
	cmd := &cobra.Command{
		Use:   "import FILE --name NAME",
		Short: "Create a TidalSession and its credentials Secret from an existing session file",
		Long: `Create a TidalSession and its credentials Secret from an existing session file:
tidalapi's session file, tidal-dl-ng's token.json, or the flat JSON of MCP servers
(access_token, refresh_token, expires_at, ...). FILE "-" reads standard input.

The Secret NAME-credentials gets the keys refresh_token, client_id and, with
--client-secret-file, client_secret. Both objects are validated by the API server
(a server-side dry run) before either is created; if creating the TidalSession fails,
the Secret is deleted again. The Secret is then owned by the TidalSession, so deleting
the session deletes its imported credentials too.

No token is printed: --dry-run and -o json|yaml show the Secret with its values masked.`,
		Example: `  # Adopt the session an MCP server keeps in the system temp directory
  kubectl tidal import /tmp/tidal-session-oauth.json --name alice --client-id exampleClientId1

  # Read the file from standard input and show what would be created
  kubectl tidal import - --name alice --client-id exampleClientId1 --dry-run < token.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.file = args[0]
			return o.run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.name, "name", "", "name of the TidalSession to create (required)")
	cmd.Flags().StringVar(&o.clientID, "client-id", "",
		"TIDAL client id the tokens were issued to; needed when the file does not name one")
	cmd.Flags().StringVar(&o.clientSecretFile, "client-secret-file", "",
		"file holding the client's secret, for clients that have one (\"-\": standard input)")
	cmd.Flags().StringVar(&o.outputSecret, "output-secret", "",
		"name of the Secret the operator writes the access token to (default NAME-tidal-token)")
	cmd.Flags().StringVar(&o.dryRun, "dry-run", dryRunNone,
		`"server" (the default without a value) has the API server validate both objects and creates nothing; `+
			`"client" only prints them`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunServer
	o.printFlags.AddFlags(cmd)
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

// run imports the file. Its side effects: with --dry-run=server, two dry-run creates; without
// --dry-run, the same dry runs, then the Secret and the TidalSession are created and the
// Secret is given the TidalSession as owner. After a failed TidalSession create the Secret is
// deleted again (only if nobody changed it since).
func (o *importOptions) run(ctx context.Context) error {
	ns, err := o.validate()
	if err != nil {
		return err
	}
	session, clientSecret, err := o.readInputs()
	if err != nil {
		return err
	}
	clientID, err := chooseClientID(o.clientID, session.ClientID)
	if err != nil {
		return err
	}
	importID, err := newImportID()
	if err != nil {
		return err
	}
	secret, ts := buildObjects(ns, o.name, o.outputSecret, session.RefreshToken, clientID, clientSecret, importID)

	// A dry run is for seeing what would be created, so it shows the objects (masked)
	// unless -o asks for something else.
	if o.dryRun != dryRunNone && *o.printFlags.OutputFormat == "" {
		*o.printFlags.OutputFormat = "yaml"
	}
	if o.dryRun == dryRunClient {
		return o.print(secret, ts, "%s (dry run)")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if err := checkOutputSecret(ctx, c, ns, o.name, o.outputSecret); apierrors.IsForbidden(err) {
		// Creating Secrets may be allowed where reading them is not; the operator then
		// reports the conflict, if there is one, on the session.
		fmt.Fprintf(o.streams.ErrOut, "warning: not allowed to check whether output Secret %q exists; "+
			"if it does and the operator does not manage it, the session reports OutputSecretConflict\n", o.outputSecret)
	} else if err != nil {
		return err
	}
	dryRunSecret, dryRunTS, err := validateOnServer(ctx, c, secret, ts)
	if err != nil {
		return err
	}
	if o.dryRun == dryRunServer {
		return o.print(dryRunSecret, dryRunTS, "%s (server dry run)")
	}

	if err := create(ctx, c, secret, ts); err != nil {
		return err
	}
	if err := own(ctx, c, secret, ts); err != nil {
		// The session works without the owner reference; only its deletion leaves the
		// Secret behind, so this is a warning, not a failure.
		fmt.Fprintln(o.streams.ErrOut, o.red.redact(fmt.Sprintf("warning: Secret %q is not owned by the "+
			"TidalSession (%v): delete it with the session", secret.Name, err)))
	}
	return o.print(secret, ts, "%s")
}

// validate checks the flags and returns the namespace.
func (o *importOptions) validate() (string, error) {
	ns, err := o.namespace()
	if err != nil {
		return "", err
	}
	if err := sessionops.ValidateName(ns, o.name); err != nil {
		return "", err
	}
	if o.outputSecret == "" {
		o.outputSecret = o.name + "-tidal-token"
	}
	switch o.dryRun {
	case dryRunNone, dryRunServer, dryRunClient:
	default:
		return "", fmt.Errorf("--dry-run must be %q, %q or %q", dryRunNone, dryRunServer, dryRunClient)
	}
	if o.file == "-" && o.clientSecretFile == "-" {
		return "", errors.New("the session file and --client-secret-file cannot both be read from standard input")
	}
	if credentialsSecretName(o.name) == o.outputSecret {
		return "", fmt.Errorf("--output-secret %q is the name of the credentials Secret: the operator "+
			"rewrites the output Secret on every refresh", o.outputSecret)
	}
	if _, err := o.printFlags.ToPrinter(); err != nil {
		return "", err
	}
	return ns, nil
}

// readInputs reads the session file and the client secret, and registers every secret value
// with the redactor before anything else can print.
func (o *importOptions) readInputs() (sessionfile.Session, string, error) {
	var session sessionfile.Session
	err := o.withInput(o.file, "session file", func(r io.Reader) error {
		var err error
		session, err = sessionfile.Read(r)
		return err
	})
	if err != nil {
		return sessionfile.Session{}, "", err
	}
	o.red.add(session.RefreshToken, session.AccessToken)

	var clientSecret string
	if o.clientSecretFile != "" {
		err := o.withInput(o.clientSecretFile, "--client-secret-file", func(r io.Reader) error {
			data, err := io.ReadAll(io.LimitReader(r, maxClientSecretFile+1))
			if err != nil {
				return fmt.Errorf("failed to read --client-secret-file: %w", err)
			}
			clientSecret, err = parseClientSecret(data)
			return err
		})
		if err != nil {
			return sessionfile.Session{}, "", err
		}
		o.red.add(clientSecret)
	}
	return session, clientSecret, nil
}

// withInput opens path ("-": standard input) and passes it to read; what names the input
// in errors.
func (o *importOptions) withInput(path, what string, read func(io.Reader) error) error {
	if path == "-" {
		return read(o.streams.In)
	}
	f, err := os.Open(path)
	if err != nil {
		// The error names the path, which the user typed; no content was read.
		return fmt.Errorf("failed to read %s: %w", what, err)
	}
	defer f.Close()
	return read(f)
}

// parseClientSecret takes a client secret file's content: one line, printable, no spaces.
func parseClientSecret(data []byte) (string, error) {
	if len(data) > maxClientSecretFile {
		return "", fmt.Errorf("--client-secret-file is larger than %d bytes: not a client secret", maxClientSecretFile)
	}
	v := string(bytes.TrimRight(data, "\r\n"))
	if v == "" {
		return "", errors.New("--client-secret-file is empty")
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return "", errors.New("--client-secret-file must hold the secret alone on one line " +
				"(it has spaces, control or non-ASCII characters)")
		}
	}
	return v, nil
}

// chooseClientID picks the client id: a refresh token works only with the client it was
// issued to, so a flag that contradicts the file is refused rather than guessed between.
func chooseClientID(flag, fromFile string) (string, error) {
	switch {
	case flag != "" && fromFile != "" && flag != fromFile:
		return "", fmt.Errorf("--client-id %q differs from the client id %q the file names: "+
			"a refresh token works only with the client it was issued to", flag, fromFile)
	case flag != "":
		return flag, nil
	case fromFile != "":
		return fromFile, nil
	}
	return "", errors.New("the file does not name the TIDAL client its tokens were issued to: " +
		"pass --client-id")
}

func newImportID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("failed to create an import id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func credentialsSecretName(session string) string { return session + "-credentials" }

// buildObjects returns the credentials Secret and the TidalSession for an import. Neither
// holds more than the operator needs: the access token of the file is not kept, since the
// operator refreshes at once.
func buildObjects(ns, name, outputSecret, refreshToken, clientID, clientSecret, importID string) (
	*corev1.Secret, *sessionsv1alpha1.TidalSession) {
	meta := func(objName string) metav1.ObjectMeta {
		return metav1.ObjectMeta{
			Name:        objName,
			Namespace:   ns,
			Labels:      map[string]string{createdByLabel: createdByValue},
			Annotations: map[string]string{importIDAnnotation: importID},
		}
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(credentialsSecretName(name)),
		Type:       corev1.SecretTypeOpaque,
		Data: map[string][]byte{
			keyRefreshToken: []byte(refreshToken),
			keyClientID:     []byte(clientID),
		},
	}
	if clientSecret != "" {
		secret.Data[keyClientSecret] = []byte(clientSecret)
	}
	ts := &sessionsv1alpha1.TidalSession{
		TypeMeta:   metav1.TypeMeta{APIVersion: sessionsv1alpha1.GroupVersion.String(), Kind: "TidalSession"},
		ObjectMeta: meta(name),
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: secret.Name},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: outputSecret},
		},
	}
	return secret, ts
}

// checkOutputSecret refuses an output Secret name that the operator would not write: one
// of a Secret it does not manage, or manages for another session. A dry run cannot see
// this, since the operator, not the API server, refuses such a Secret.
func checkOutputSecret(ctx context.Context, c client.Client, ns, session, name string) error {
	// Only metadata is read: the Secret's values are none of the plugin's business.
	existing := &metav1.PartialObjectMetadata{}
	existing.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, existing)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("failed to check output Secret %q: %w", name, err)
	}
	labels := existing.GetLabels()
	if labels[sessionsv1alpha1.ManagedByLabel] != sessionsv1alpha1.ManagedByValue {
		return fmt.Errorf("output Secret %q exists and is not managed by the operator, which would "+
			"leave it untouched: choose another name with --output-secret", name)
	}
	if owner := labels[sessionsv1alpha1.SessionLabel]; owner != session {
		return fmt.Errorf("output Secret %q belongs to TidalSession %q: choose another name with --output-secret",
			name, owner)
	}
	return nil
}

// validateOnServer has the API server run both creates as a dry run: validation, the
// CRD's rules, admission, quota, permissions and name collisions are all checked before
// anything exists. It returns the objects as the API server would store them.
func validateOnServer(ctx context.Context, c client.Client, secret *corev1.Secret,
	ts *sessionsv1alpha1.TidalSession) (*corev1.Secret, *sessionsv1alpha1.TidalSession, error) {
	s := secret.DeepCopy()
	if err := c.Create(ctx, s, client.DryRunAll); err != nil {
		return nil, nil, createError("Secret", secret.Name, err)
	}
	t := ts.DeepCopy()
	if err := c.Create(ctx, t, client.DryRunAll); err != nil {
		return nil, nil, createError("TidalSession", ts.Name, err)
	}
	return s, t, nil
}

func createError(kind, name string, err error) error {
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("%s %q already exists: nothing was created", kind, name)
	}
	return fmt.Errorf("failed to create %s %q, nothing was created: %w", kind, name, err)
}

// create creates the Secret, then the TidalSession; the Secret first, so that the operator
// finds the session's credentials on its first look. When the TidalSession cannot be
// created, the Secret is deleted again. secret and ts are updated to what was stored.
func create(ctx context.Context, c client.Client, secret *corev1.Secret, ts *sessionsv1alpha1.TidalSession) error {
	if err := c.Create(ctx, secret); err != nil {
		return createError("Secret", secret.Name, err)
	}
	createErr := c.Create(ctx, ts)
	if createErr == nil {
		return nil
	}

	// The rest must run even when an interrupt cancelled ctx.
	cleanupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rollbackTimeout)
	defer cancel()
	if !isDefiniteFailure(createErr) {
		// A timeout or a broken connection does not say whether the create happened.
		stored := &sessionsv1alpha1.TidalSession{}
		err := c.Get(cleanupCtx, client.ObjectKeyFromObject(ts), stored)
		if err == nil && stored.Annotations[importIDAnnotation] == ts.Annotations[importIDAnnotation] {
			stored.DeepCopyInto(ts)
			return nil
		}
	}
	// Deleted only if it is still the Secret this run created, unchanged.
	uid, rv := secret.UID, secret.ResourceVersion
	err := c.Delete(cleanupCtx, secret, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("failed to create TidalSession %q: %w; and failed to delete Secret %q created "+
			"for it (%v): delete it by hand", ts.Name, createErr, secret.Name, err)
	}
	return fmt.Errorf("failed to create TidalSession %q: %w; Secret %q created for it was deleted again, "+
		"nothing is left", ts.Name, createErr, secret.Name)
}

// isDefiniteFailure says whether err is the API server's answer that the request was
// refused, as opposed to no answer at all.
func isDefiniteFailure(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	return !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsInternalError(err)
}

// own makes ts the owner of secret, so that deleting the session deletes the credentials
// import created for it. Side effect: one merge patch of the Secret's metadata.
func own(ctx context.Context, c client.Client, secret *corev1.Secret, ts *sessionsv1alpha1.TidalSession) error {
	// No optimistic lock: the Secret was created moments ago without owners, and the
	// operator may already have written a rotated refresh token into it.
	patch := client.MergeFrom(secret.DeepCopy())
	secret.OwnerReferences = append(secret.OwnerReferences, metav1.OwnerReference{
		APIVersion: sessionsv1alpha1.GroupVersion.String(),
		Kind:       "TidalSession",
		Name:       ts.Name,
		UID:        ts.UID,
	})
	return c.Patch(ctx, secret, patch)
}

// print prints what import created (or would create) through the -o printer, with the
// Secret's values masked. operation is the name printer's template, e.g. "%s (dry run)".
func (o *importOptions) print(secret *corev1.Secret, ts *sessionsv1alpha1.TidalSession, operation string) error {
	if err := o.printFlags.Complete(operation); err != nil {
		return err
	}
	p, err := o.printFlags.ToPrinter()
	if err != nil {
		return err
	}
	objs := []runtime.Object{maskSecret(secret), forPrinting(ts)}
	// The name printer takes no lists; every other printer gets one document, as kubectl
	// prints several objects.
	if format := *o.printFlags.OutputFormat; format == "" || format == "name" {
		for _, obj := range objs {
			if err := p.PrintObj(obj, o.streams.Out); err != nil {
				return err
			}
		}
		return nil
	}
	list := &corev1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for _, obj := range objs {
		list.Items = append(list.Items, runtime.RawExtension{Object: obj})
	}
	return p.PrintObj(list, o.streams.Out)
}

// maskSecret returns a copy of s for printing: every value masked but the client id, which
// is no secret and tells which client the tokens belong to.
func maskSecret(s *corev1.Secret) *corev1.Secret {
	out := forPrinting(s)
	out.Data = nil
	out.StringData = make(map[string]string, len(s.Data)+len(s.StringData))
	for _, values := range []map[string][]byte{s.Data, stringDataBytes(s.StringData)} {
		for k, v := range values {
			if k == keyClientID {
				out.StringData[k] = string(v)
				continue
			}
			out.StringData[k] = masked
		}
	}
	return out
}

func stringDataBytes(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// forPrinting returns a copy of obj with its kind set and without managed fields, which
// say nothing a person needs here.
func forPrinting[T client.Object](obj T) T {
	out := obj.DeepCopyObject().(T)
	out.SetManagedFields(nil)
	gvks, _, err := scheme.ObjectKinds(out)
	if err == nil && len(gvks) > 0 {
		out.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
	return out
}
