package healthapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/cache"
	certutil "k8s.io/client-go/util/cert"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/tidal-mcp/tidal-session-operator/internal/controller"
)

// Options configure the health endpoint's server.
type Options struct {
	// BindAddress is where the endpoint listens, e.g. ":8444".
	BindAddress string
	// CertDir holds tls.crt and tls.key, reloaded when they change (a cert-manager
	// Certificate's Secret, mounted). Empty means a self-signed certificate generated at
	// start, as the metrics endpoint uses: encrypted, but callers cannot verify it.
	CertDir string
	// Namespaces are the namespaces the operator manages; empty means all.
	Namespaces []string
	// Access decides who may read which session; nil means TokenReview and
	// SubjectAccessReview through the manager's client with the default cache.
	Access Checker
	// TokenAudience turns the token endpoint (TokenPath) on: callers must present a
	// ServiceAccount token issued for this audience and bound to their pod. Empty means off,
	// and TokenPath answers 404 like any unknown path.
	TokenAudience string
}

// Server serves the health endpoint over HTTPS. It is a manager.Runnable that runs on every
// replica, leader or not, because it only reads the manager's cache.
type Server struct {
	opts    Options
	handler http.Handler
	log     logr.Logger
}

var _ manager.LeaderElectionRunnable = (*Server)(nil)

// Setup adds the health endpoint to mgr.
func Setup(mgr manager.Manager, opts Options) error {
	if opts.Access == nil {
		// The manager's client sends creates straight to the API server, and its per-resource
		// rate limiters keep review traffic from delaying the reconciler's own writes.
		access, err := NewAccess(TokenReviewer(mgr.GetClient()), AccessReviewer(mgr.GetClient()), AccessOptions{})
		if err != nil {
			return err
		}
		opts.Access = access
	}
	log := mgr.GetLogger().WithName("health-api")
	h := &Handler{Sessions: mgr.GetClient(), Access: opts.Access, Namespaces: opts.Namespaces, Log: log}
	token, err := newTokenHandler(mgr, opts, log)
	if err != nil {
		return err
	}
	return mgr.Add(&Server{opts: opts, handler: NewMux(h, token), log: log})
}

// maxReviewsInFlight bounds the token endpoint's TokenReviews under way. The manager's client
// allows 20 requests a second to the API server; more waiting reviews would only time out.
const maxReviewsInFlight = 16

// newTokenHandler is the token endpoint of opts.TokenAudience, nil when it is off. It reads
// through the manager's cache, which holds Pods (stripped) and the output Secrets, and emits
// Events as the reconciler does.
func newTokenHandler(mgr manager.Manager, opts Options, log logr.Logger) (*TokenHandler, error) {
	if opts.TokenAudience == "" {
		return nil, nil
	}
	tokens, err := NewPodTokens(TokenReviewer(mgr.GetClient(), opts.TokenAudience), maxReviewsInFlight, AccessOptions{})
	if err != nil {
		return nil, err
	}
	return &TokenHandler{Cache: mgr.GetClient(), Live: mgr.GetAPIReader(), Tokens: tokens, Precheck: true,
		Verdicts: cache.NewLRUExpireCache(defaultMaxEntries), Audience: opts.TokenAudience,
		Namespaces: opts.Namespaces, Recorder: mgr.GetEventRecorder(controller.EventReporter),
		Log: log.WithName("token")}, nil
}

// NewServer returns a Server of handler, for tests that have no manager.
func NewServer(opts Options, handler http.Handler, log logr.Logger) *Server {
	return &Server{opts: opts, handler: handler, log: log}
}

// NeedLeaderElection is false: every replica answers, so a probe does not fail over with
// the leader.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves until ctx ends, then gives open requests a few seconds to finish.
func (s *Server) Start(ctx context.Context) error {
	tlsConfig, err := s.tlsConfig(ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.opts.BindAddress)
	if err != nil {
		return fmt.Errorf("failed to listen for the health endpoint: %w", err)
	}

	srv := &http.Server{
		Handler:   s.handler,
		TLSConfig: tlsConfig,
		// Tight limits: callers send one small GET, and slow or huge requests from
		// unauthenticated clients must not tie up the operator.
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    32 << 10,
		Protocols:         http1Only(),
	}
	s.log.Info("Serving health endpoint", "address", ln.Addr().String(), "certDir", s.opts.CertDir,
		"tokenEndpointAudience", s.opts.TokenAudience)

	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("health endpoint stopped: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("failed to stop the health endpoint: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// http1Only turns HTTP/2 off, as on the metrics endpoint: its stream handling has had
// denial-of-service flaws, and one small GET does not need it.
func http1Only() *http.Protocols {
	p := &http.Protocols{}
	p.SetHTTP1(true)
	return p
}

func (s *Server) tlsConfig(ctx context.Context) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
	}
	if s.opts.CertDir != "" {
		// An explicit directory must hold a certificate: falling back to a self-signed one
		// would quietly break callers that verify it.
		watcher, err := certwatcher.New(filepath.Join(s.opts.CertDir, "tls.crt"), filepath.Join(s.opts.CertDir, "tls.key"))
		if err != nil {
			return nil, fmt.Errorf("failed to load the health endpoint's certificate: %w", err)
		}
		go func() {
			if err := watcher.Start(ctx); err != nil {
				s.log.Error(err, "Certificate watcher of the health endpoint stopped")
			}
		}()
		cfg.GetCertificate = watcher.GetCertificate
		return cfg, nil
	}

	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to generate the health endpoint's certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("failed to load the health endpoint's certificate: %w", err)
	}
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}
