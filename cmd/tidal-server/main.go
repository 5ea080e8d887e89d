// Command tidal-server serves the TIDAL-compatible server of internal/tidalserver for the
// demo and the contract tests: TIDAL's surface on one loopback port, the admin API on
// another.
//
// On start it prints one JSON line with its URLs (and writes it to --addr-file when given),
// so scripts can find the random ports:
//
//	{"base_url":"http://127.0.0.1:PORT/","auth_base_url":".../v1/oauth2/",
//	 "api_base_url":".../v1/","openapi_base_url":".../v2/","admin_url":"http://127.0.0.1:PORT/"}
//
// Its log never carries a token or a client secret.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tidal-mcp/tidal-session-operator/internal/tidalserver"
)

// demoClient is registered when no --client is given.
var demoClient = tidalserver.Client{ID: "tidalDemoClient1", Name: "TIDAL session operator demo"}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], log); err != nil {
		log.Error("tidal-server failed", "err", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	listen, adminListen string
	allowNonLoopback    bool
	addrFile            string
	cfg                 tidalserver.Config
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("tidal-server", flag.ContinueOnError)
	o := &options{}
	var clients, lifetimes listFlag
	var scopes string
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of TIDAL's surface")
	fs.StringVar(&o.adminListen, "admin-listen", "127.0.0.1:0",
		"address of the admin API (loopback only)")
	fs.BoolVar(&o.allowNonLoopback, "allow-non-loopback", false,
		"allow --listen on a non-loopback address (the admin API stays on loopback)")
	fs.StringVar(&o.addrFile, "addr-file", "", "file to write the URLs to, as one JSON line")
	fs.Var(&clients, "client",
		"registered client id[:secret[:name]]; repeatable (default: a public demo client)")
	fs.Var(&lifetimes, "client-access-token-lifetime",
		"access token lifetime of one client, id=duration; repeatable")
	fs.StringVar(&scopes, "scopes", strings.Join(tidalserver.DefaultScopes, " "),
		"space-separated scopes every --client may be granted")
	fs.DurationVar(&o.cfg.AccessTokenLifetime, "access-token-lifetime",
		tidalserver.DefaultAccessTokenLifetime, "expires_in of access tokens")
	fs.DurationVar(&o.cfg.DeviceCodeLifetime, "device-code-lifetime",
		tidalserver.DefaultDeviceCodeLifetime, "lifetime of device codes")
	fs.DurationVar(&o.cfg.DevicePollInterval, "device-poll-interval",
		tidalserver.DefaultDevicePollInterval, "interval device clients must poll at")
	fs.BoolVar(&o.cfg.Rotation.Enabled, "rotate-refresh-tokens", false,
		"answer every refresh with a new refresh token (TIDAL usually does not)")
	fs.DurationVar(&o.cfg.Rotation.Grace, "rotation-grace", 0,
		"how long a rotated-out refresh token is still accepted")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	var err error
	if o.cfg.Clients, err = parseClients(clients, strings.Fields(scopes)); err != nil {
		return nil, err
	}
	if err := applyLifetimes(o.cfg.Clients, lifetimes); err != nil {
		return nil, err
	}
	if err := o.cfg.Validate(); err != nil {
		return nil, err
	}
	if !loopbackAddr(o.adminListen) {
		return nil, errors.New("--admin-listen must be a loopback address")
	}
	if !loopbackAddr(o.listen) && !o.allowNonLoopback {
		return nil, errors.New(
			"--listen is not a loopback address; pass --allow-non-loopback to allow it")
	}
	return o, nil
}

// parseClients reads --client values id[:secret[:name]].
func parseClients(values []string, scopes []string) ([]tidalserver.Client, error) {
	if len(values) == 0 {
		c := demoClient
		c.Scopes = scopes
		return []tidalserver.Client{c}, nil
	}
	out := make([]tidalserver.Client, 0, len(values))
	for _, v := range values {
		parts := strings.SplitN(v, ":", 3)
		c := tidalserver.Client{ID: parts[0], Scopes: scopes}
		if len(parts) > 1 {
			c.Secret = parts[1]
		}
		if len(parts) > 2 {
			c.Name = parts[2]
		}
		if c.Name == "" {
			c.Name = c.ID
		}
		out = append(out, c)
	}
	return out, nil
}

// applyLifetimes reads --client-access-token-lifetime values id=duration.
func applyLifetimes(clients []tidalserver.Client, values []string) error {
	for _, v := range values {
		id, raw, ok := strings.Cut(v, "=")
		d, err := time.ParseDuration(raw)
		if !ok || err != nil {
			return fmt.Errorf("--client-access-token-lifetime %q is not id=duration", v)
		}
		found := false
		for i := range clients {
			if clients[i].ID == id {
				clients[i].AccessTokenLifetime, found = d, true
			}
		}
		if !found {
			return fmt.Errorf("--client-access-token-lifetime names unregistered client %q", id)
		}
	}
	return nil
}

func run(args []string, log *slog.Logger) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	srv := tidalserver.New(o.cfg)

	ln, err := listen(o.listen, o.allowNonLoopback)
	if err != nil {
		return err
	}
	adminLn, err := listen(o.adminListen, false)
	if err != nil {
		ln.Close()
		return err
	}
	urls := addresses(ln.Addr(), adminLn.Addr())
	if err := announce(urls, o.addrFile); err != nil {
		ln.Close()
		adminLn.Close()
		return err
	}
	log.Info("tidal server listening", "baseURL", urls.Base, "adminURL", urls.Admin,
		"clients", len(o.cfg.Clients))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return serve(ctx, log, map[net.Listener]http.Handler{ln: srv, adminLn: srv.AdminHandler()})
}

// serve serves each listener until ctx ends or one of them fails, then shuts all down.
func serve(ctx context.Context, log *slog.Logger, handlers map[net.Listener]http.Handler) error {
	errs := make(chan error, len(handlers))
	servers := make([]*http.Server, 0, len(handlers))
	for ln, h := range handlers {
		hs := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			// Injected faults may delay an answer by up to a minute.
			WriteTimeout:   2 * time.Minute,
			IdleTimeout:    time.Minute,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		servers = append(servers, hs)
		go func() { errs <- hs.Serve(ln) }()
	}

	var failed error
	select {
	case <-ctx.Done():
		log.Info("tidal server stopping")
	case failed = <-errs:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		if err := hs.Shutdown(shutdownCtx); err != nil && failed == nil {
			failed = err
		}
	}
	if errors.Is(failed, http.ErrServerClosed) {
		failed = nil
	}
	return failed
}

// listen binds addr and checks that what it bound is loopback, unless allowed otherwise:
// a host name such as localhost could resolve to anything.
func listen(addr string, allowNonLoopback bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !allowNonLoopback && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("%s did not bind a loopback address", addr)
	}
	return ln, nil
}

// loopbackAddr says whether addr names a loopback host: an IP in 127.0.0.0/8, ::1, or
// localhost. An empty host means every interface and is not loopback.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// urls are what the command announces on start.
type urls struct {
	Base    string `json:"base_url"`
	Auth    string `json:"auth_base_url"`
	API     string `json:"api_base_url"`
	OpenAPI string `json:"openapi_base_url"`
	Admin   string `json:"admin_url"`
}

func addresses(tidal, admin net.Addr) urls {
	base := "http://" + tidal.String() + "/"
	return urls{Base: base, Auth: base + "v1/oauth2/", API: base + "v1/", OpenAPI: base + "v2/",
		Admin: "http://" + admin.String() + "/"}
}

// announce prints the URLs as one JSON line and writes them to file, when given, through
// a rename so a reader never sees half a file.
func announce(u urls, file string) error {
	line, err := json.Marshal(u)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	if _, err := os.Stdout.Write(line); err != nil {
		return fmt.Errorf("failed to print the URLs: %w", err)
	}
	if file == "" {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".addr-*")
	if err != nil {
		return fmt.Errorf("failed to write the address file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(line); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to write the address file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write the address file: %w", err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("failed to write the address file: %w", err)
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
