package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// cons is a consumer pod of the test namespace; kind "Pod" makes it a bare pod.
func cons(pod, sa, kind, name string, lbls ...string) consumer {
	group := "apps"
	if kind == "Pod" {
		group = ""
	}
	id := fingerprint.Identity{Namespace: testNamespace, ServiceAccount: sa,
		Workload: fingerprint.Workload{Group: group, Kind: kind, Name: name}}
	l := map[string]string{}
	for i := 0; i+1 < len(lbls); i += 2 {
		l[lbls[i]] = lbls[i+1]
	}
	return consumer{pod: pod, labels: l, id: id, fp: id.Fingerprint()}
}

var (
	mcpPod    = cons("mcp-5d4f8b-x1", "mcp", "Deployment", "mcp", "app", "mcp")
	mcpRolled = cons("mcp-77c9aa-z3", "mcp", "Deployment", "mcp", "app", "mcp")
	mcpNewSA  = cons("mcp-88aa00-q1", "intruder", "Deployment", "mcp", "app", "mcp")
	rogue     = cons("rogue", "intruder", "Pod", "rogue", "app", "mcp")
)

// boundTo is a binding status with the given consumers bound an hour before t0.
func boundTo(cs ...consumer) sessionsv1alpha1.BindingStatus {
	var st sessionsv1alpha1.BindingStatus
	for _, c := range cs {
		st.Bound = append(st.Bound, boundConsumerOf(c, metav1.NewTime(t0.Add(-time.Hour))))
	}
	return st
}

// eventField lists field of each Event that sets it: reasons (Events emitted) or metrics
// (security events counted).
func eventField(evs []bindingEvent, field func(bindingEvent) string) []string {
	var out []string
	for _, e := range evs {
		if v := field(e); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func reasons(evs []bindingEvent) []string {
	return eventField(evs, func(e bindingEvent) string { return e.reason })
}

func securityTypes(evs []bindingEvent) []string {
	return eventField(evs, func(e bindingEvent) string { return e.metric })
}

func TestDecideBinding(t *testing.T) {
	quarantined := boundTo(mcpPod)
	quarantined.QuarantinedAt = &metav1.Time{Time: t0.Add(-time.Minute)}
	quarantined.Violators = []sessionsv1alpha1.BindingViolation{violatorOf(violation{c: rogue,
		typ: sessionsv1alpha1.ViolationConsumerMismatch}, metav1.NewTime(t0.Add(-time.Minute)))}
	reported := boundTo(mcpPod)
	reported.Violators = quarantined.Violators
	reported.Violations = 1
	saOnly, _ := allowedMatcher(&sessionsv1alpha1.AllowedConsumers{ServiceAccounts: []string{"mcp"}})
	saAndLabel, _ := allowedMatcher(&sessionsv1alpha1.AllowedConsumers{ServiceAccounts: []string{"mcp", "intruder"},
		PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "mcp"}}})

	for _, tc := range []struct {
		name      string
		mode      sessionsv1alpha1.BindingMode
		allowed   func(consumer) bool
		status    sessionsv1alpha1.BindingStatus
		consumers []consumer
		approval  string

		wantBound      []string // fingerprints bound afterwards
		wantCond       metav1.ConditionStatus
		wantReason     string
		wantEvents     []string
		wantSecurity   []string
		wantQuarantine bool
		wantViolations int64
	}{
		{name: "observe learns the first consumers", mode: sessionsv1alpha1.BindingObserve,
			consumers: []consumer{mcpPod, mcpRolled},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionTrue, wantReason: sessionsv1alpha1.ReasonConsumersMatch,
			wantEvents: []string{sessionsv1alpha1.ReasonConsumerBound}},
		{name: "no consumers: nothing learned, Bound True", mode: sessionsv1alpha1.BindingObserve,
			wantCond: metav1.ConditionTrue, wantReason: sessionsv1alpha1.ReasonConsumersMatch},
		{name: "rollout: new pods of the bound Deployment raise nothing", mode: sessionsv1alpha1.BindingEnforce,
			status: boundTo(mcpPod), consumers: []consumer{mcpRolled},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionTrue, wantReason: sessionsv1alpha1.ReasonConsumersMatch},
		{name: "observe reports an unknown consumer and keeps going", mode: sessionsv1alpha1.BindingObserve,
			status: boundTo(mcpPod), consumers: []consumer{mcpPod, rogue},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonConsumerMismatch,
			wantEvents: []string{sessionsv1alpha1.ReasonConsumerMismatch}, wantSecurity: []string{metrics.SecurityConsumerMismatch},
			wantViolations: 1},
		{name: "a bound workload under a new ServiceAccount is a changed fingerprint", mode: sessionsv1alpha1.BindingObserve,
			status: boundTo(mcpPod), consumers: []consumer{mcpNewSA},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonFingerprintChanged,
			wantEvents: []string{sessionsv1alpha1.ReasonFingerprintChanged}, wantSecurity: []string{metrics.SecurityFingerprintChanged},
			wantViolations: 1},
		{name: "a reported violator is not reported again", mode: sessionsv1alpha1.BindingObserve,
			status: reported, consumers: []consumer{mcpPod, rogue},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonConsumerMismatch,
			wantViolations: 1},
		{name: "enforce quarantines on a violation", mode: sessionsv1alpha1.BindingEnforce,
			status: boundTo(mcpPod), consumers: []consumer{mcpPod, rogue},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonQuarantined,
			wantEvents:   []string{sessionsv1alpha1.ReasonConsumerMismatch},
			wantSecurity: []string{metrics.SecurityConsumerMismatch, metrics.SecurityQuarantined}, wantQuarantine: true,
			wantViolations: 1},
		{name: "a quarantine outlives the violator", mode: sessionsv1alpha1.BindingEnforce,
			status: quarantined, consumers: []consumer{mcpPod},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonQuarantined,
			wantQuarantine: true},
		{name: "observe lifts a quarantine left by enforce", mode: sessionsv1alpha1.BindingObserve,
			status: quarantined, consumers: []consumer{mcpPod},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionTrue, wantReason: sessionsv1alpha1.ReasonConsumersMatch},
		{name: "approval binds exactly the current consumers and lifts the quarantine", mode: sessionsv1alpha1.BindingEnforce,
			status: quarantined, consumers: []consumer{rogue}, approval: "2026-12-04T10:00:00Z",
			wantBound: []string{rogue.fp}, wantCond: metav1.ConditionTrue, wantReason: sessionsv1alpha1.ReasonConsumersMatch,
			wantEvents: []string{sessionsv1alpha1.ReasonBindingApproved}},
		{name: "an approval handled before changes nothing", mode: sessionsv1alpha1.BindingEnforce,
			status:    func() sessionsv1alpha1.BindingStatus { s := quarantined; s.LastApproval = "a"; return s }(),
			consumers: []consumer{mcpPod}, approval: "a",
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonQuarantined,
			wantQuarantine: true},
		{name: "allowed ServiceAccounts bind without trust on first use", mode: sessionsv1alpha1.BindingEnforce,
			allowed: saOnly, consumers: []consumer{mcpPod, rogue},
			wantBound: []string{mcpPod.fp}, wantCond: metav1.ConditionFalse, wantReason: sessionsv1alpha1.ReasonQuarantined,
			wantEvents:   []string{sessionsv1alpha1.ReasonConsumerBound, sessionsv1alpha1.ReasonConsumerMismatch},
			wantSecurity: []string{metrics.SecurityConsumerMismatch, metrics.SecurityQuarantined}, wantQuarantine: true,
			wantViolations: 1},
		{name: "ServiceAccount and selector must both match", mode: sessionsv1alpha1.BindingObserve,
			allowed: saAndLabel, consumers: []consumer{cons("a", "mcp", "Deployment", "a", "tier", "mcp"),
				cons("b", "intruder", "Deployment", "b", "tier", "other")},
			wantBound: []string{cons("a", "mcp", "Deployment", "a").fp}, wantCond: metav1.ConditionFalse,
			wantReason:   sessionsv1alpha1.ReasonConsumerMismatch,
			wantEvents:   []string{sessionsv1alpha1.ReasonConsumerBound, sessionsv1alpha1.ReasonConsumerMismatch},
			wantSecurity: []string{metrics.SecurityConsumerMismatch}, wantViolations: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decideBinding(bindingInput{mode: tc.mode, allowed: tc.allowed, status: *tc.status.DeepCopy(),
				consumers: tc.consumers, approval: tc.approval, now: t0, rules: AnomalyRules{}.withDefaults()})
			var bound []string
			for _, b := range d.status.Bound {
				bound = append(bound, b.Fingerprint)
			}
			if strings.Join(bound, ",") != strings.Join(tc.wantBound, ",") {
				t.Errorf("bound %v, want %v", bound, tc.wantBound)
			}
			if d.bound.Status != tc.wantCond || d.bound.Reason != tc.wantReason {
				t.Errorf("Bound %s/%s (%s), want %s/%s", d.bound.Status, d.bound.Reason, d.bound.Message, tc.wantCond, tc.wantReason)
			}
			if got := reasons(d.events); strings.Join(got, ",") != strings.Join(tc.wantEvents, ",") {
				t.Errorf("events %v, want %v", got, tc.wantEvents)
			}
			if got := securityTypes(d.events); strings.Join(got, ",") != strings.Join(tc.wantSecurity, ",") {
				t.Errorf("security events %v, want %v", got, tc.wantSecurity)
			}
			if d.quarantined != tc.wantQuarantine || (d.status.QuarantinedAt != nil) != tc.wantQuarantine {
				t.Errorf("quarantined %v (%v), want %v", d.quarantined, d.status.QuarantinedAt, tc.wantQuarantine)
			}
			if d.status.Violations != tc.wantViolations {
				t.Errorf("violations %d, want %d", d.status.Violations, tc.wantViolations)
			}
		})
	}
}

func TestViolationEventNamesPodAndFingerprint(t *testing.T) {
	d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, status: boundTo(mcpPod),
		consumers: []consumer{mcpNewSA}, now: t0, rules: AnomalyRules{}.withDefaults()})
	if len(d.events) != 1 {
		t.Fatalf("events %+v", d.events)
	}
	e := d.events[0]
	for _, want := range []string{mcpNewSA.pod, mcpNewSA.fp, "ServiceAccount intruder", mcpPod.fp, "Deployment/mcp"} {
		if !strings.Contains(e.note, want) {
			t.Errorf("event %q does not name %q", e.note, want)
		}
	}
	if e.eventType != corev1.EventTypeWarning {
		t.Errorf("event type %s", e.eventType)
	}
	if v := d.status.Violators; len(v) != 1 || v[0].Pod != mcpNewSA.pod || v[0].Type != sessionsv1alpha1.ViolationFingerprintChanged ||
		v[0].ServiceAccount != "intruder" || v[0].Workload.Name != "mcp" {
		t.Errorf("violators %+v", v)
	}
}

func TestDecideBindingAnomalies(t *testing.T) {
	rules := AnomalyRules{BurstThreshold: 3, BurstWindow: 10 * time.Minute, ViolationThreshold: 1, ViolationWindow: time.Hour}
	many := func(prefix string, n int) []consumer {
		var out []consumer
		for i := range n {
			name := prefix + string(rune('a'+i))
			out = append(out, cons(name, "sa", "Deployment", name))
		}
		return out
	}
	t.Run("a burst of new consumers fires once when it crosses the threshold", func(t *testing.T) {
		d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, consumers: many("w", 4), now: t0, rules: rules})
		if d.anomaly.Status != metav1.ConditionTrue || d.anomaly.Reason != sessionsv1alpha1.ReasonConsumerBurst {
			t.Fatalf("anomaly %+v", d.anomaly)
		}
		if got := securityTypes(d.events); strings.Join(got, ",") != metrics.SecurityConsumerBurst {
			t.Errorf("security events %v", got)
		}
		cond := d.anomaly
		again := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, status: d.status,
			consumers: append(many("w", 4), many("x", 1)...), now: t0.Add(time.Minute), rules: rules, anomaly: &cond})
		if got := securityTypes(again.events); len(got) != 1 || got[0] != metrics.SecurityConsumerMismatch {
			t.Errorf("a burst already reported was reported again: %v", got)
		}
		if again.anomaly.Status != metav1.ConditionTrue {
			t.Errorf("Anomaly must stay True until approval: %+v", again.anomaly)
		}
	})
	t.Run("three consumers within the window are no burst", func(t *testing.T) {
		d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, consumers: many("w", 3), now: t0, rules: rules})
		if d.anomaly.Status != metav1.ConditionFalse || d.anomaly.Reason != sessionsv1alpha1.ReasonNoAnomaly {
			t.Errorf("anomaly %+v", d.anomaly)
		}
	})
	t.Run("new consumers outside the window do not count", func(t *testing.T) {
		st := boundTo(many("w", 3)...)
		for range 3 {
			st.NewConsumerTimes = append(st.NewConsumerTimes, metav1.NewTime(t0.Add(-11*time.Minute)))
		}
		d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, allowed: func(consumer) bool { return true },
			status: st, consumers: many("x", 2), now: t0, rules: rules})
		if d.anomaly.Status != metav1.ConditionFalse || len(d.status.NewConsumerTimes) != 2 {
			t.Errorf("anomaly %+v, times %v", d.anomaly, d.status.NewConsumerTimes)
		}
	})
	t.Run("repeated violations", func(t *testing.T) {
		d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, status: boundTo(mcpPod),
			consumers: []consumer{mcpPod, rogue, mcpNewSA}, now: t0, rules: rules})
		if d.anomaly.Status != metav1.ConditionTrue || d.anomaly.Reason != sessionsv1alpha1.ReasonRepeatedViolations {
			t.Fatalf("anomaly %+v", d.anomaly)
		}
		got := securityTypes(d.events)
		if strings.Join(got, ",") != strings.Join([]string{metrics.SecurityConsumerMismatch, metrics.SecurityFingerprintChanged,
			metrics.SecurityRepeatedViolations}, ",") {
			t.Errorf("security events %v", got)
		}
		cond := d.anomaly
		approved := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingObserve, status: d.status,
			consumers: []consumer{mcpPod}, approval: "ok", now: t0, rules: rules, anomaly: &cond})
		if approved.anomaly.Status != metav1.ConditionFalse || approved.anomaly.Reason != sessionsv1alpha1.ReasonBindingApproved ||
			len(approved.status.Violators) != 0 || len(approved.status.ViolationTimes) != 0 || approved.status.Violations != 2 {
			t.Errorf("after approval: anomaly %+v, status %+v", approved.anomaly, approved.status)
		}
	})
}

func TestAnomalyRulesDefaults(t *testing.T) {
	got := AnomalyRules{BurstThreshold: 99}.withDefaults()
	if got.BurstThreshold != MaxAnomalyThreshold || got.BurstWindow != DefaultBurstWindow ||
		got.ViolationThreshold != DefaultViolationThreshold || got.ViolationWindow != DefaultViolationWindow {
		t.Errorf("rules %+v", got)
	}
}

// Before the session's first token, trust on first use learns nothing and judges nothing; an
// allow-list or a bound fingerprint is judged all the same.
func TestDecideBindingBeforeFirstToken(t *testing.T) {
	rogue := cons("rogue", "intruder", "Pod", "rogue")
	d := decideBinding(bindingInput{mode: sessionsv1alpha1.BindingEnforce, consumers: []consumer{rogue},
		beforeFirstToken: true, now: t0})
	if len(d.status.Bound) != 0 || len(d.events) != 0 || d.quarantined {
		t.Errorf("before the first token: bound %v, events %v, quarantined %t", d.status.Bound, d.events, d.quarantined)
	}
	d = decideBinding(bindingInput{mode: sessionsv1alpha1.BindingEnforce, consumers: []consumer{rogue},
		status: boundTo(mcpPod), beforeFirstToken: true, now: t0})
	if !d.quarantined {
		t.Error("a rogue consumer of a bound session went unjudged before the first token")
	}
}
