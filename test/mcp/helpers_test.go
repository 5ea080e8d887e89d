package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/sessionops"
	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
	"github.com/tidal-mcp/tidal-session-operator/test/support"
	"github.com/tidal-mcp/tidal-session-operator/test/support/sink"
)

var (
	// seen is everything an MCP client or a person running tidal-mcp could see: tool results,
	// the server's logs and the Inspector's output. The leak search reads it.
	seen sink.Buffer
	// secretValues are the values that must never be seen.
	secretValues = support.NewSecrets(canaryClientSecret)
)

// issueGrant gives a TIDAL user a canary refresh token, as a login would.
func issueGrant(userID int64) string {
	return support.IssueGrant(tidalServer.Server, secretValues, tidalserver.GrantSpec{
		ClientID: clientID, UserID: userID, CountryCode: "NO", RefreshToken: "CANARY-MCP-RT-" + rand.String(24)})
}

// createSession creates NAME-creds holding refreshToken and the TidalSession NAME writing to
// NAME-token.
func createSession(ns, name, refreshToken string) {
	GinkgoHelper()
	ctx := context.Background()
	Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-creds"},
		StringData: map[string]string{"client_id": clientID, "client_secret": canaryClientSecret,
			"refresh_token": refreshToken},
	})).To(Succeed())
	Expect(k8s.Create(ctx, &sessionsv1alpha1.TidalSession{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: sessionsv1alpha1.TidalSessionSpec{
			CredentialsSecretRef: sessionsv1alpha1.CredentialsSecretReference{Name: name + "-creds"},
			OutputSecret:         sessionsv1alpha1.OutputSecretSpec{Name: name + "-token"},
		},
	})).To(Succeed())
}

func getSession(ns, name string) *sessionsv1alpha1.TidalSession {
	GinkgoHelper()
	return support.GetSession(k8s, ns, name)
}

func phaseOf(ns, name string) func() sessionsv1alpha1.Phase {
	return func() sessionsv1alpha1.Phase { return getSession(ns, name).Status.Phase }
}

// outputSecret reads a session's output Secret and remembers its access token for the leak
// search.
func outputSecret(ns, name string) *corev1.Secret {
	GinkgoHelper()
	s := &corev1.Secret{}
	Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-token"}, s)).To(Succeed())
	secretValues.Remember(string(s.Data[sessionsv1alpha1.KeyAccessToken]))
	return s
}

// serverArgs are the flags of a tidal-mcp run against the test API server with kubeconfig.
func serverArgs(kubeconfig string, extra ...string) []string {
	return append([]string{"--kubeconfig", kubeconfig, "--namespace", nsMain}, extra...)
}

// connectStdio starts tidal-mcp with args as the SDK's command transport does, and returns
// the client's session; the server's stderr goes to seen.
func connectStdio(args ...string) *mcp.ClientSession {
	GinkgoHelper()
	cmd := exec.Command(serverBin, args...)
	cmd.Stderr = io.MultiWriter(&seen, GinkgoWriter)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "suite", Version: "v0"}, nil).
		Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cs.Close)
	return cs
}

// serverAddress matches the address tidal-mcp logs once it serves streamable HTTP.
var serverAddress = regexp.MustCompile(`Serving MCP over streamable HTTP" address=(\S+)`)

// startHTTP starts tidal-mcp serving streamable HTTP on a free loopback port, and returns its
// endpoint URL once it listens.
func startHTTP(args ...string) string {
	GinkgoHelper()
	cmd := exec.Command(serverBin, append(args, "--transport", "http", "--http-address", "127.0.0.1:0")...)
	stderr, err := cmd.StderrPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stderr)
		for scanner.Scan() {
			line := scanner.Text()
			fmt.Fprintln(&seen, line)
			fmt.Fprintln(GinkgoWriter, line)
			if m := serverAddress.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	var endpoint string
	Eventually(addr, 20*time.Second).Should(Receive(&endpoint))
	return "http://" + endpoint + "/mcp"
}

func connectHTTP(endpoint string) *mcp.ClientSession {
	GinkgoHelper()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "suite", Version: "v0"}, nil).
		Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: endpoint, MaxRetries: -1}, nil)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(cs.Close)
	return cs
}

// toolResult is a tool call's answer as a client sees it.
type toolResult struct {
	IsError    bool
	Text       string
	Structured map[string]any
}

// callTool calls a tool through cs, records what the client saw, and fails on a protocol
// error: bad arguments must give tool errors, not protocol errors.
func callTool(cs *mcp.ClientSession, tool string, args map[string]any) toolResult {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	Expect(err).NotTo(HaveOccurred(), "%s answered with a protocol error", tool)
	whole, err := json.Marshal(res)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(&seen, "%s\n", whole)
	out := toolResult{IsError: res.IsError}
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			out.Text += tc.Text
		}
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		Expect(err).NotTo(HaveOccurred())
		Expect(json.Unmarshal(b, &out.Structured)).To(Succeed())
	}
	GinkgoWriter.Printf("%s %v -> isError=%v\n%s\n", tool, args, out.IsError, out.Text)
	return out
}

// structuredSummary decodes the session summary inside a refresh result.
func structuredSummary(r toolResult) sessionops.Summary {
	GinkgoHelper()
	var sum sessionops.Summary
	b, err := json.Marshal(r.Structured["session"])
	Expect(err).NotTo(HaveOccurred())
	Expect(json.Unmarshal(b, &sum)).To(Succeed())
	return sum
}

// inspector runs the MCP Inspector's command-line mode with args and returns its decoded
// JSON answer; its output is recorded for the leak search.
func inspector(args ...string) map[string]any {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, inspectorBin, append([]string{"--cli"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, &seen)
	err := cmd.Run()
	fmt.Fprintf(&seen, "%s\n", stdout.String())
	GinkgoWriter.Printf("inspector %s\n%s%s\n", strings.Join(args, " "), stdout.String(), stderr.String())
	Expect(err).NotTo(HaveOccurred(), "inspector: %s", stderr.String())
	var out map[string]any
	Expect(json.Unmarshal(stdout.Bytes(), &out)).To(Succeed(), "inspector printed no JSON: %s", stdout.String())
	return out
}

// inspectorText joins the text content of a tool result the Inspector printed.
func inspectorText(res map[string]any) string {
	var b strings.Builder
	content, _ := res["content"].([]any)
	for _, c := range content {
		if m, ok := c.(map[string]any); ok && m["type"] == "text" {
			b.WriteString(fmt.Sprint(m["text"]))
		}
	}
	return b.String()
}

func expectNoLeaks() {
	// Every token now in an output Secret counts too: refreshes made new ones.
	secretValues.RememberStoredTokens(context.Background(), k8s)
	haystack := seen.String()
	Expect(secretValues.Len()).To(BeNumerically(">", 10), "the search has the suite's tokens to look for")
	secretValues.ExpectNoneIn(haystack, "a tool result, a log or the Inspector's output")
	// The search must be able to find something: the outputs do name the sessions.
	Expect(haystack).To(And(ContainSubstring("Tool call"), ContainSubstring("Refreshed TidalSession mcp-main/alice")))
}
