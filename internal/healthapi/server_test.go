package healthapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	certutil "k8s.io/client-go/util/cert"
)

// freeLoopbackAddr is a loopback address with a port nobody listens on right now.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServer runs a Server until the test ends and returns its address.
func startServer(t *testing.T, opts Options) (string, <-chan error) {
	t.Helper()
	opts.BindAddress = freeLoopbackAddr(t)
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := NewServer(opts, ok, logr.Discard())
	if srv.NeedLeaderElection() {
		t.Error("the health endpoint waits for leadership; standbys would not answer")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped with %v", err)
		}
	})
	return opts.BindAddress, done
}

// get calls the server until it listens, with HTTP/2 offered.
func get(t *testing.T, addr string, tlsConfig *tls.Config) *http.Response {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}}
	var lastErr error
	for range 50 {
		resp, err := c.Get("https://" + addr + "/sessions/a/b")
		if err == nil {
			resp.Body.Close()
			return resp
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no answer from %s: %v", addr, lastErr)
	return nil
}

func TestServerSelfSignedHTTPS(t *testing.T) {
	addr, _ := startServer(t, Options{})
	resp := get(t, addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the certificate is self-signed by design
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp.TLS == nil || resp.ProtoMajor != 1 {
		t.Fatalf("want HTTPS over HTTP/1.1, got %s, TLS %v", resp.Proto, resp.TLS != nil)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if !strings.HasPrefix(leaf.Issuer.CommonName, "localhost") {
		t.Errorf("certificate issued by %q, want the generated self-signed one", leaf.Issuer.CommonName)
	}

	// Plain HTTP gets no answer: a token must never cross the wire in clear.
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Get("http://" + addr + "/sessions/a/b"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusTeapot {
			t.Error("the endpoint answered plain HTTP")
		}
	}
}

func TestServerCertDir(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("health.example", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)

	addr, _ := startServer(t, Options{CertDir: dir})
	// Verified, not skipped: the caller trusts only the mounted certificate's issuer.
	resp := get(t, addr, &tls.Config{RootCAs: roots})
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A directory without a certificate stops the server instead of falling back to a
// self-signed one that callers who verify would reject.
func TestServerCertDirMissing(t *testing.T) {
	srv := NewServer(Options{BindAddress: freeLoopbackAddr(t), CertDir: t.TempDir()}, http.NotFoundHandler(), logr.Discard())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Start(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Start: %v", err)
	}
}
