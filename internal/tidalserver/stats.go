package tidalserver

import "maps"

// unregisteredClient is the key under which Stats counts client ids the server does not
// know, so that arbitrary ids cannot grow the counters without bound.
const unregisteredClient = "(unregistered)"

// Stats counts the requests to TIDAL's surface since the start or the last ResetStats.
//
// An outcome key is "<operation>/<result>". The operation is the grant on the token endpoint
// (refresh_token, device_code, client_credentials; "token" when the grant type is missing or
// unknown) and the endpoint elsewhere. The result is "ok", the OAuth error code on the auth
// host (invalid_grant, authorization_pending, ...), "<status>/<subStatus>" on the v1 API
// host, the status on the openapi host, and "fault_<status>" or "delay" for injected faults.
type Stats struct {
	// Endpoints counts requests per endpoint name (see the Endpoint constants).
	Endpoints map[string]int `json:"endpoints"`
	// Clients counts requests per client id: the claimed one on the auth host, the token's on
	// the API hosts.
	Clients map[string]int `json:"clients"`
	// Outcomes counts answers per outcome key.
	Outcomes map[string]int `json:"outcomes"`
	// ClientOutcomes counts answers per client id and outcome key.
	ClientOutcomes map[string]map[string]int `json:"client_outcomes"`
}

func newStats() Stats {
	return Stats{Endpoints: map[string]int{}, Clients: map[string]int{},
		Outcomes: map[string]int{}, ClientOutcomes: map[string]map[string]int{}}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := Stats{Endpoints: maps.Clone(s.stats.Endpoints), Clients: maps.Clone(s.stats.Clients),
		Outcomes: maps.Clone(s.stats.Outcomes), ClientOutcomes: map[string]map[string]int{}}
	for id, m := range s.stats.ClientOutcomes {
		out.ClientOutcomes[id] = maps.Clone(m)
	}
	return out
}

// ResetStats sets every counter back to zero.
func (s *Server) ResetStats() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats = newStats()
}

// countRequest counts a request that reached an endpoint.
func (s *Server) countRequest(req *Request) {
	id := s.statsClient(req.ClientID)
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats.Endpoints[req.Endpoint]++
	if id != "" {
		s.stats.Clients[id]++
	}
}

// count counts an answer under "<op>/<result>".
func (s *Server) count(clientID, op, result string) {
	id := s.statsClient(clientID)
	key := op + "/" + result
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.stats.Outcomes[key]++
	if id == "" {
		return
	}
	m := s.stats.ClientOutcomes[id]
	if m == nil {
		m = map[string]int{}
		s.stats.ClientOutcomes[id] = m
	}
	m[key]++
}

// statsClient is the key a client id is counted under.
func (s *Server) statsClient(id string) string {
	if id == "" {
		return ""
	}
	// s.clients is not changed after New, so it needs no lock.
	if s.clients[id] == nil {
		return unregisteredClient
	}
	return id
}
