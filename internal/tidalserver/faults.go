package tidalserver

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// Interceptor sees every request to TIDAL's surface before the server handles it, after
// its form or bearer token has been read. It returns true when it has written the answer,
// which ends the request; otherwise it must write nothing.
type Interceptor func(w http.ResponseWriter, req *Request) bool

// AddInterceptor appends an interceptor. Interceptors run in the order they were added,
// after the fault queue.
func (s *Server) AddInterceptor(i Interceptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.interceptors = append(s.interceptors, i)
}

// Fault is an answer the server gives instead of its own, for tests of outages, rate limits
// and slow answers.
type Fault struct {
	// Endpoint is the endpoint it applies to; one of the Endpoint constants.
	Endpoint string
	// ClientID limits it to requests of one client (see Request.ClientID); empty means all.
	ClientID string
	// Status is the HTTP status of the answer; 0 means the server answers as usual after
	// Delay.
	Status int
	// Body is the answer's body, e.g. an error object in TIDAL's shape; it may be empty.
	Body string
	// Headers are set on the answer, e.g. Retry-After. Content-Type defaults to
	// application/json when Body is not empty.
	Headers map[string]string
	// Delay is waited before answering, or before the usual handling when Status is 0.
	Delay time.Duration
	// Count is how many requests it applies to: 0 means one, a negative number means all
	// until ResetFaults.
	Count int
	// DropAnswer handles the request as usual and then closes the connection without an
	// answer, as when a proxy or the network loses TIDAL's answer: TIDAL has done the work
	// (issued, perhaps rotated, a token) and the client never learns of it. It needs Status 0.
	DropAnswer bool
}

// InjectFault queues a fault. Faults are consulted in the order they were queued; the first
// that matches a request answers it.
func (s *Server) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.Count == 0 {
		f.Count = 1
	}
	f.Headers = cloneHeaders(f.Headers)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
	return nil
}

func (f *Fault) validate() error {
	known := false
	for _, rt := range routes {
		known = known || rt.endpoint == f.Endpoint
	}
	switch {
	case !known:
		return fmt.Errorf("unknown endpoint %q", f.Endpoint)
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return fmt.Errorf("status %d is not an HTTP status from 200 to 599", f.Status)
	case f.DropAnswer && f.Status != 0:
		return errors.New("a fault that drops the answer cannot also set a status")
	case f.Status == 0 && f.Delay <= 0 && !f.DropAnswer:
		return errors.New("a fault needs a status, a delay, or to drop the answer")
	case f.Delay < 0 || f.Delay > time.Minute:
		return errors.New("delay must be between 0 and 1m")
	}
	for k, v := range f.Headers {
		if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
			return errors.New("a header name or value is not valid")
		}
	}
	return nil
}

// ResetFaults removes every queued fault.
func (s *Server) ResetFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// intercept gives the fault queue and then the interceptors their turn. It reports whether
// the request has been answered, and whether its answer is to be dropped.
func (s *Server) intercept(w http.ResponseWriter, req *Request) (answered, drop bool) {
	f, interceptors := s.takeFault(req)
	if f != nil {
		// Counted when taken: a client that gives up during the delay has met the fault too.
		switch {
		case f.Status != 0:
			s.count(req.ClientID, req.Endpoint, "fault_"+strconv.Itoa(f.Status))
		case f.DropAnswer:
			s.count(req.ClientID, req.Endpoint, "dropped")
		default:
			s.count(req.ClientID, req.Endpoint, "delay")
		}
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-req.HTTP.Context().Done():
				t.Stop()
				return true, false
			}
		}
		if f.Status != 0 {
			writeFault(w, f)
			return true, false
		}
		drop = f.DropAnswer
	}
	for _, i := range interceptors {
		if i(w, req) {
			return true, false
		}
	}
	return false, drop
}

// discardAnswer is where the answer to a request goes whose answer a fault drops.
type discardAnswer struct{ header http.Header }

func (d *discardAnswer) Header() http.Header         { return d.header }
func (d *discardAnswer) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardAnswer) WriteHeader(int)             {}

// takeFault takes one use of the first fault that matches req, and copies the interceptors.
func (s *Server) takeFault(req *Request) (*Fault, []Interceptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	interceptors := append([]Interceptor(nil), s.interceptors...)
	for i, f := range s.faults {
		if f.Endpoint != req.Endpoint || (f.ClientID != "" && f.ClientID != req.ClientID) {
			continue
		}
		taken := *f
		if f.Count > 0 {
			f.Count--
			if f.Count == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return &taken, interceptors
	}
	return nil, interceptors
}

func writeFault(w http.ResponseWriter, f *Fault) {
	if f.Body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	for k, v := range f.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(f.Body))
}

func cloneHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	return out
}
