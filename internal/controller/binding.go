package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/fingerprint"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// Defaults of the anomaly rules, the operator's --anomaly-* flags.
const (
	DefaultBurstThreshold     = 5
	DefaultBurstWindow        = 10 * time.Minute
	DefaultViolationThreshold = 2
	DefaultViolationWindow    = time.Hour
	// MaxAnomalyThreshold bounds both thresholds: status keeps at most one more time than the
	// threshold (status.binding.newConsumerTimes and violationTimes hold 32).
	MaxAnomalyThreshold = 30
)

// Bounds of the lists in status.binding, as the CRD declares them.
const (
	maxBound     = 32
	maxViolators = 16
	maxTimes     = 32
	// maxListed bounds how many consumers a condition message names.
	maxListed = 5
	// maxQuarantineReason is status.binding.quarantineReason's bound in the CRD.
	maxQuarantineReason = 1024
)

// AnomalyRules are the thresholds of the anomaly rules; a zero field takes its default.
type AnomalyRules struct {
	// BurstThreshold: more new fingerprints than this within BurstWindow is a burst.
	BurstThreshold int
	BurstWindow    time.Duration
	// ViolationThreshold: more violations than this within ViolationWindow are repeated.
	ViolationThreshold int
	ViolationWindow    time.Duration
}

func (a AnomalyRules) withDefaults() AnomalyRules {
	if a.BurstThreshold <= 0 {
		a.BurstThreshold = DefaultBurstThreshold
	}
	if a.BurstWindow <= 0 {
		a.BurstWindow = DefaultBurstWindow
	}
	if a.ViolationThreshold <= 0 {
		a.ViolationThreshold = DefaultViolationThreshold
	}
	if a.ViolationWindow <= 0 {
		a.ViolationWindow = DefaultViolationWindow
	}
	a.BurstThreshold = min(a.BurstThreshold, MaxAnomalyThreshold)
	a.ViolationThreshold = min(a.ViolationThreshold, MaxAnomalyThreshold)
	return a
}

// bindingStep checks the consumers of the output Secret against spec.binding. Side effects:
// status.binding and the Bound and Anomaly conditions; Events and security-event metrics for
// new consumers, violations, anomalies and approvals; in Enforce mode, on a violation, the
// access token removed from the output Secret (existing), and a terminal error that keeps the
// session from refreshing until a person approves. Without spec.binding it removes what an
// earlier binding left in status, which also lifts a quarantine.
func (r *TidalSessionReconciler) bindingStep(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	existing *corev1.Secret) error {
	policy := session.Spec.Binding
	if policy == nil {
		session.Status.Binding = nil
		meta.RemoveStatusCondition(&session.Status.Conditions, sessionsv1alpha1.ConditionBound)
		meta.RemoveStatusCondition(&session.Status.Conditions, sessionsv1alpha1.ConditionAnomaly)
		return nil
	}
	allowed, err := allowedMatcher(policy.Allowed)
	if err != nil {
		// Admission checks the rest; a selector's operators only the operator can.
		return terminalf(sessionsv1alpha1.PhaseError, sessionsv1alpha1.ReasonInvalidSpec,
			"spec.binding.allowed.podSelector is invalid: %v", err)
	}
	consumers, err := r.listConsumers(ctx, session)
	if err != nil {
		return err
	}
	var st sessionsv1alpha1.BindingStatus
	if session.Status.Binding != nil {
		st = *session.Status.Binding.DeepCopy()
	} else {
		// An approval approves what a person saw under a binding. A value already there when
		// the binding starts (left from a binding since removed, or in a restored object) is
		// not one: it would bind every current consumer unseen.
		st.LastApproval = requestKey(session.Annotations[sessionsv1alpha1.BindingApprovalAnnotation])
	}
	now := r.Clock.Now()
	d := decideBinding(bindingInput{
		mode: policy.Mode, allowed: allowed, status: st, consumers: consumers, now: now,
		beforeFirstToken: existing == nil,
		approval:         session.Annotations[sessionsv1alpha1.BindingApprovalAnnotation],
		anomaly:          meta.FindStatusCondition(session.Status.Conditions, sessionsv1alpha1.ConditionAnomaly),
		rules:            r.Anomaly.withDefaults(),
	})
	session.Status.Binding = &d.status
	setCondition(session, sessionsv1alpha1.ConditionBound, d.bound, now)
	setCondition(session, sessionsv1alpha1.ConditionAnomaly, d.anomaly, now)
	r.emitBindingEvents(ctx, session, d.events)
	if !d.quarantined {
		return nil
	}
	return r.enforceQuarantine(ctx, session, existing)
}

// quarantined says whether status.binding records a quarantine.
func quarantined(session *sessionsv1alpha1.TidalSession) bool {
	return session.Status.Binding != nil && session.Status.Binding.QuarantinedAt != nil
}

// enforceQuarantine withholds the token of a quarantined session: the access token removed
// from the output Secret (existing), and a terminal error that keeps the session from
// refreshing. Terminal: only a person's approval, a change of spec.binding or a change of
// consumers (all of which trigger a reconcile) can change the verdict.
func (r *TidalSessionReconciler) enforceQuarantine(ctx context.Context, session *sessionsv1alpha1.TidalSession,
	existing *corev1.Secret) error {
	if err := r.quarantineOutput(ctx, existing); err != nil {
		return err
	}
	// The Secret holds no token, so status must not promise one (nor metrics, which read it).
	session.Status.AccessTokenExpiresAt, session.Status.NextRefreshTime = nil, nil
	if l := session.Status.DeviceLogin; l != nil && l.State == sessionsv1alpha1.DeviceLoginPending {
		// A quarantined session is not polled, so a login under way would leave a stale code
		// in status, inviting someone to log in to a session nobody may use. After approval, a
		// session that still needs a login starts a new one.
		r.endLogin(session)
		r.event(session, corev1.EventTypeWarning, sessionsv1alpha1.ReasonQuarantined, "Binding",
			"The device login under way was cancelled by the quarantine")
	}
	st := session.Status.Binding
	return terminalf(sessionsv1alpha1.PhaseQuarantined, sessionsv1alpha1.ReasonQuarantined,
		"Quarantined since %s: %s. The output Secret holds no access token and is not refreshed until a "+
			"person approves the current consumers with the %s annotation",
		st.QuarantinedAt.UTC().Format(time.RFC3339), st.QuarantineReason, sessionsv1alpha1.BindingApprovalAnnotation)
}

// raiseAnomaly records an anomaly that a refresh or a health check found, under a binding: the
// Anomaly condition turns True until a person approves, and when quarantine is set and the
// mode is Enforce, the session is quarantined (the caller then calls enforceQuarantine).
// Counting the security event and the Event are the caller's, which knows what it found.
func (r *TidalSessionReconciler) raiseAnomaly(session *sessionsv1alpha1.TidalSession, reason, msg string, quarantine bool) {
	policy, st := session.Spec.Binding, session.Status.Binding
	if policy == nil || st == nil {
		return
	}
	now := r.Clock.Now()
	setCondition(session, sessionsv1alpha1.ConditionAnomaly,
		metav1.Condition{Status: metav1.ConditionTrue, Reason: reason, Message: msg}, now)
	if !quarantine || policy.Mode != sessionsv1alpha1.BindingEnforce || st.QuarantinedAt != nil {
		return
	}
	st.QuarantinedAt = timePtr(truncate(now))
	st.QuarantineReason = cutUTF8(msg, maxQuarantineReason)
	metrics.SecurityEvents.WithLabelValues(metrics.SecurityQuarantined).Inc()
}

// emitBindingEvents sends the decision's Events and counts its security events.
func (r *TidalSessionReconciler) emitBindingEvents(ctx context.Context, session *sessionsv1alpha1.TidalSession, evs []bindingEvent) {
	for _, e := range evs {
		if e.metric != "" {
			metrics.SecurityEvents.WithLabelValues(e.metric).Inc()
		}
		if e.reason == "" {
			continue
		}
		r.Recorder.Eventf(session, podObject(session.Namespace, e.pod), e.eventType, e.reason, "Binding", "%s", e.note)
		log := logf.FromContext(ctx)
		if e.eventType != corev1.EventTypeWarning {
			log = log.V(1)
		}
		log.Info("Binding event", "session", klog.KObj(session), "reason", e.reason, "pod", e.pod, "fingerprint", e.fingerprint)
	}
}

// podObject is an Event's related object: the pod it is about, nil for none. The Event
// recorder folds Events of the same session, reason and related object into one series that
// keeps the first text, so two pods reported in one reconcile need one each to be named both.
func podObject(namespace, name string) runtime.Object {
	if name == "" {
		return nil
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
}

// quarantineOutput removes the access token from the output Secret: the keys stay, so that
// consumers reading them find the marker instead of a missing file, but access_token and
// session.json (which carries the token too) are empty and token_status says quarantined.
// The refreshed-at annotation stays, so the schedule is not lost; an empty token makes the
// first reconcile after approval refresh at once.
func (r *TidalSessionReconciler) quarantineOutput(ctx context.Context, existing *corev1.Secret) error {
	if existing == nil || isQuarantinedOutput(existing) {
		return nil
	}
	scrubbed := existing.DeepCopy()
	scrubbed.Data = quarantinedData(existing.Data)
	// An update, not a patch: it fails on a Secret changed since it was read, and the retry
	// reads it again.
	if err := r.Update(ctx, scrubbed); err != nil {
		return fmt.Errorf("failed to remove the access token from output Secret %s: %w", existing.Name, err)
	}
	logf.FromContext(ctx).Info("Access token removed from the output Secret", "secret", klog.KObj(existing))
	return nil
}

// quarantinedData is the output Secret's data with the token withheld.
func quarantinedData(data map[string][]byte) map[string][]byte {
	out := maps.Clone(data)
	out[sessionsv1alpha1.KeyAccessToken] = []byte{}
	out[sessionsv1alpha1.KeySessionFile] = []byte{}
	out[sessionsv1alpha1.KeyTokenStatus] = []byte(sessionsv1alpha1.TokenStatusQuarantined)
	return out
}

func isQuarantinedOutput(s *corev1.Secret) bool {
	return len(s.Data[sessionsv1alpha1.KeyAccessToken]) == 0 && len(s.Data[sessionsv1alpha1.KeySessionFile]) == 0 &&
		string(s.Data[sessionsv1alpha1.KeyTokenStatus]) == sessionsv1alpha1.TokenStatusQuarantined
}

// allowedMatcher turns spec.binding.allowed into a predicate on consumers; nil without it.
// A consumer must match every field that is set.
func allowedMatcher(allowed *sessionsv1alpha1.AllowedConsumers) (func(consumer) bool, error) {
	if allowed == nil {
		return nil, nil
	}
	selector := labels.Everything()
	if allowed.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(allowed.PodSelector)
		if err != nil {
			return nil, err
		}
		selector = s
	}
	accounts := allowed.ServiceAccounts
	return func(c consumer) bool {
		sa := c.id.ServiceAccount
		if sa == "" {
			sa = fingerprint.DefaultServiceAccount
		}
		return (len(accounts) == 0 || slices.Contains(accounts, sa)) && selector.Matches(labels.Set(c.labels))
	}, nil
}

// bindingInput is everything decideBinding decides from.
type bindingInput struct {
	mode sessionsv1alpha1.BindingMode
	// allowed matches consumers that spec.binding.allowed admits; nil without it.
	allowed   func(consumer) bool
	status    sessionsv1alpha1.BindingStatus
	consumers []consumer
	// beforeFirstToken says that there is no output Secret yet: the session never had a token.
	beforeFirstToken bool
	// approval is the value of the approve-binding annotation.
	approval string
	// anomaly is the Anomaly condition as stored, nil when absent.
	anomaly *metav1.Condition
	rules   AnomalyRules
	now     time.Time
}

// bindingEvent is an Event to emit and, when metric is set, a security event to count.
type bindingEvent struct {
	eventType, reason, note string
	metric                  string
	// pod and fingerprint are logged with a Warning.
	pod, fingerprint string
}

// bindingDecision is what decideBinding decided: the new status.binding, the Bound and
// Anomaly conditions (type, lastTransitionTime and observedGeneration are the caller's),
// the Events, and whether the session is quarantined.
type bindingDecision struct {
	status      sessionsv1alpha1.BindingStatus
	bound       metav1.Condition
	anomaly     metav1.Condition
	events      []bindingEvent
	quarantined bool
}

// violation is a current consumer that does not match, and how.
type violation struct {
	c   consumer
	typ sessionsv1alpha1.ViolationType
}

// decideBinding judges the current consumers against the binding. In order:
//
//  1. A new value of the approval annotation binds exactly the current consumers, clears the
//     violations, the anomaly record and a quarantine.
//  2. Each consumer whose fingerprint is bound matches. One that spec.binding.allowed admits
//     is bound. Without spec.binding.allowed, while nothing is bound, every consumer is bound
//     (trust on first use), but only once the session has had a token: before, no consumer
//     is looked at. Any other consumer is a violation: FingerprintChanged when its
//     workload is bound under another fingerprint, ConsumerMismatch otherwise. A violation is
//     reported (Event, metric, status.binding.violators) once per fingerprint until approval.
//  3. Enforce quarantines on any current violation, and stays quarantined until approval;
//     Observe never quarantines.
//  4. Anomaly rules fire when a count within its window crosses its threshold: new
//     fingerprints (bound or not) for the burst rule, reported violations for the
//     repeated-violations rule. Anomaly stays True until approval.
//
// A rollout of a bound workload brings new pods of the same fingerprint: step 2 matches them,
// and nothing is reported.
func decideBinding(in bindingInput) bindingDecision {
	st := in.status
	now := metav1.NewTime(truncate(in.now))
	consumers := in.consumers
	if in.beforeFirstToken && in.allowed == nil && len(st.Bound) == 0 {
		// Trust on first use learns the consumers present once the session has a token (the
		// output Secret's creation brings the next reconcile), not whichever pod names the
		// Secret before there was ever one: nothing is judged until then.
		consumers = nil
	}
	var evs []bindingEvent
	anomaly := metav1.Condition{Status: metav1.ConditionFalse, Reason: sessionsv1alpha1.ReasonNoAnomaly,
		Message: "No anomaly rule fired since the binding was set or last approved"}
	if in.anomaly != nil {
		anomaly = metav1.Condition{Status: in.anomaly.Status, Reason: in.anomaly.Reason, Message: in.anomaly.Message}
	}

	if in.approval != "" && requestKey(in.approval) != st.LastApproval {
		st = approveConsumers(st, consumers, now)
		st.LastApproval = requestKey(in.approval)
		anomaly = metav1.Condition{Status: metav1.ConditionFalse, Reason: sessionsv1alpha1.ReasonBindingApproved,
			Message: "A person approved the current consumers; no anomaly rule fired since"}
		evs = append(evs, bindingEvent{eventType: corev1.EventTypeNormal, reason: sessionsv1alpha1.ReasonBindingApproved,
			note: fmt.Sprintf("Approved %d consumer(s) (%s) with %s; the list of violators cleared and any quarantine lifted",
				len(st.Bound), boundWorkloads(st.Bound), sessionsv1alpha1.BindingApprovalAnnotation)})
	}
	burstBefore := len(pruneTimes(st.NewConsumerTimes, in.now, in.rules.BurstWindow))
	violationsBefore := len(pruneTimes(st.ViolationTimes, in.now, in.rules.ViolationWindow))

	learning := in.allowed == nil && len(st.Bound) == 0
	var violating []violation
	seen := map[string]bool{}
	for _, c := range consumers {
		if seen[c.fp] {
			continue
		}
		seen[c.fp] = true
		if boundIndex(st.Bound, c.fp) >= 0 {
			continue
		}
		admitted := in.allowed != nil && in.allowed(c)
		if (admitted || learning) && len(st.Bound) < maxBound {
			st.Bound = append(st.Bound, boundConsumerOf(c, now))
			st.NewConsumerTimes = append(st.NewConsumerTimes, now)
			evs = append(evs, bindingEvent{eventType: corev1.EventTypeNormal, reason: sessionsv1alpha1.ReasonConsumerBound,
				pod: c.pod, fingerprint: c.fp,
				note: fmt.Sprintf("Bound pod %s (%s, ServiceAccount %s, fingerprint %s)", c.pod, c.id.Workload,
					c.id.ServiceAccount, c.fp)})
			continue
		}
		if admitted {
			// Allowed by the spec, but status has no room to record it: it still matches.
			continue
		}
		v := violation{c: c, typ: sessionsv1alpha1.ViolationConsumerMismatch}
		if workloadBound(st.Bound, c.id.Workload) {
			v.typ = sessionsv1alpha1.ViolationFingerprintChanged
		}
		violating = append(violating, v)
		if violatorIndex(st.Violators, c.fp) >= 0 || len(st.Violators) >= maxViolators {
			// Reported already; or the list is full, and a violation that cannot be recorded
			// would be reported again on every reconcile. The Bound condition still counts it.
			continue
		}
		st.Violators = append(st.Violators, violatorOf(v, now))
		st.Violations++
		st.NewConsumerTimes = append(st.NewConsumerTimes, now)
		st.ViolationTimes = append(st.ViolationTimes, now)
		evs = append(evs, violationEvent(v, st.Bound))
	}

	switch {
	case in.mode != sessionsv1alpha1.BindingEnforce:
		st.QuarantinedAt, st.QuarantineReason = nil, ""
	case st.QuarantinedAt == nil && len(violating) > 0:
		st.QuarantinedAt = &now
		st.QuarantineReason = quarantineReason(violating)
		evs = append(evs, bindingEvent{metric: metrics.SecurityQuarantined})
	}

	st.NewConsumerTimes = pruneTimes(st.NewConsumerTimes, in.now, in.rules.BurstWindow)
	st.ViolationTimes = pruneTimes(st.ViolationTimes, in.now, in.rules.ViolationWindow)
	for _, rule := range []struct {
		before, after, threshold int
		window                   time.Duration
		reason, metric, what     string
	}{
		{burstBefore, len(st.NewConsumerTimes), in.rules.BurstThreshold, in.rules.BurstWindow,
			sessionsv1alpha1.ReasonConsumerBurst, metrics.SecurityConsumerBurst, "new consumers"},
		{violationsBefore, len(st.ViolationTimes), in.rules.ViolationThreshold, in.rules.ViolationWindow,
			sessionsv1alpha1.ReasonRepeatedViolations, metrics.SecurityRepeatedViolations, "binding violations"},
	} {
		if rule.before > rule.threshold || rule.after <= rule.threshold {
			continue
		}
		msg := fmt.Sprintf("%d %s within %s, more than the threshold of %d", rule.after, rule.what, rule.window, rule.threshold)
		anomaly = metav1.Condition{Status: metav1.ConditionTrue, Reason: rule.reason, Message: msg}
		evs = append(evs, bindingEvent{eventType: corev1.EventTypeWarning, reason: rule.reason, metric: rule.metric, note: msg})
	}

	return bindingDecision{status: st, bound: boundCondition(st, consumers, violating), anomaly: anomaly,
		events: evs, quarantined: st.QuarantinedAt != nil}
}

// approveConsumers binds exactly the current consumers and forgets violations, anomalies and
// a quarantine: a person has looked at who consumes the session and agreed.
func approveConsumers(st sessionsv1alpha1.BindingStatus, consumers []consumer, now metav1.Time) sessionsv1alpha1.BindingStatus {
	approved := st
	approved.Bound, approved.Violators = nil, nil
	approved.NewConsumerTimes, approved.ViolationTimes = nil, nil
	approved.QuarantinedAt, approved.QuarantineReason = nil, ""
	for _, c := range consumers {
		if len(approved.Bound) == maxBound || boundIndex(approved.Bound, c.fp) >= 0 {
			continue
		}
		b := boundConsumerOf(c, now)
		if i := boundIndex(st.Bound, c.fp); i >= 0 {
			b.FirstSeen = st.Bound[i].FirstSeen
		}
		approved.Bound = append(approved.Bound, b)
	}
	return approved
}

// quarantineReason says which consumers quarantined a session.
func quarantineReason(violating []violation) string {
	first := violating[0]
	msg := fmt.Sprintf("pod %s (%s, %s, fingerprint %s) does not match the binding", first.c.pod, first.typ,
		first.c.id.Workload, first.c.fp)
	if more := len(violating) - 1; more > 0 {
		msg += fmt.Sprintf(", and %d more consumer(s)", more)
	}
	return cutUTF8(msg, maxQuarantineReason)
}

// violationEvent is the Warning Event and security event of a new violation. It names the pod
// and its fingerprint, never anything of the Secret's content.
func violationEvent(v violation, bound []sessionsv1alpha1.BoundConsumer) bindingEvent {
	e := bindingEvent{eventType: corev1.EventTypeWarning, reason: string(v.typ), pod: v.c.pod, fingerprint: v.c.fp,
		metric: metrics.SecurityConsumerMismatch}
	who := fmt.Sprintf("pod %s (%s, ServiceAccount %s, fingerprint %s)", v.c.pod, v.c.id.Workload, v.c.id.ServiceAccount, v.c.fp)
	if v.typ == sessionsv1alpha1.ViolationFingerprintChanged {
		e.metric = metrics.SecurityFingerprintChanged
		var known []string
		for _, b := range bound {
			if sameWorkload(b.Workload, v.c.id.Workload) {
				known = append(known, fmt.Sprintf("%s (ServiceAccount %s)", b.Fingerprint, b.ServiceAccount))
			}
		}
		e.note = fmt.Sprintf("Bound workload %s consumes the output Secret under a new fingerprint: %s; bound as %s",
			v.c.id.Workload, who, strings.Join(known, ", "))
		return e
	}
	e.note = fmt.Sprintf("The output Secret is consumed by %s, which is not bound to the session", who)
	return e
}

// boundCondition is the Bound condition: False while quarantined or while a current consumer
// does not match, True otherwise.
func boundCondition(st sessionsv1alpha1.BindingStatus, consumers []consumer, violating []violation) metav1.Condition {
	if len(violating) == 0 {
		msg := fmt.Sprintf("All %d consumer pod(s) match the binding", len(consumers))
		if len(consumers) == 0 {
			msg = "No pod references the output Secret"
		}
		if st.QuarantinedAt != nil {
			return metav1.Condition{Status: metav1.ConditionFalse, Reason: sessionsv1alpha1.ReasonQuarantined,
				Message: msg + ", but the session stays quarantined until a person approves"}
		}
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: sessionsv1alpha1.ReasonConsumersMatch, Message: msg}
	}
	var listed []string
	for _, v := range violating[:min(len(violating), maxListed)] {
		listed = append(listed, fmt.Sprintf("pod %s (%s, %s, fingerprint %s)", v.c.pod, v.typ, v.c.id.Workload, v.c.fp))
	}
	if more := len(violating) - maxListed; more > 0 {
		listed = append(listed, fmt.Sprintf("and %d more", more))
	}
	reason := string(violating[0].typ)
	if st.QuarantinedAt != nil {
		reason = sessionsv1alpha1.ReasonQuarantined
	}
	return metav1.Condition{Status: metav1.ConditionFalse, Reason: reason,
		Message: fmt.Sprintf("%d consumer(s) do not match the binding: %s", len(violating), strings.Join(listed, "; "))}
}

// pruneTimes keeps the times within window before now, the latest maxTimes of them.
func pruneTimes(times []metav1.Time, now time.Time, window time.Duration) []metav1.Time {
	var out []metav1.Time
	for _, t := range times {
		if now.Sub(t.Time) < window {
			out = append(out, t)
		}
	}
	if len(out) > maxTimes {
		out = out[len(out)-maxTimes:]
	}
	return out
}

func boundConsumerOf(c consumer, now metav1.Time) sessionsv1alpha1.BoundConsumer {
	return sessionsv1alpha1.BoundConsumer{Fingerprint: c.fp, ServiceAccount: c.id.ServiceAccount,
		Workload: workloadRef(c.id.Workload), FirstSeen: now}
}

func violatorOf(v violation, now metav1.Time) sessionsv1alpha1.BindingViolation {
	return sessionsv1alpha1.BindingViolation{Fingerprint: v.c.fp, Type: v.typ, Pod: v.c.pod,
		ServiceAccount: v.c.id.ServiceAccount, Workload: workloadRef(v.c.id.Workload), FirstSeen: now}
}

func workloadRef(w fingerprint.Workload) sessionsv1alpha1.WorkloadReference {
	return sessionsv1alpha1.WorkloadReference{APIGroup: w.Group, Kind: w.Kind, Name: w.Name}
}

func sameWorkload(ref sessionsv1alpha1.WorkloadReference, w fingerprint.Workload) bool {
	return ref.APIGroup == w.Group && ref.Kind == w.Kind && ref.Name == w.Name
}

func workloadBound(bound []sessionsv1alpha1.BoundConsumer, w fingerprint.Workload) bool {
	return slices.ContainsFunc(bound, func(b sessionsv1alpha1.BoundConsumer) bool { return sameWorkload(b.Workload, w) })
}

func boundIndex(bound []sessionsv1alpha1.BoundConsumer, fp string) int {
	return slices.IndexFunc(bound, func(b sessionsv1alpha1.BoundConsumer) bool { return b.Fingerprint == fp })
}

func violatorIndex(vs []sessionsv1alpha1.BindingViolation, fp string) int {
	return slices.IndexFunc(vs, func(v sessionsv1alpha1.BindingViolation) bool { return v.Fingerprint == fp })
}

// boundWorkloads names the bound workloads for people, "none" when nothing is bound.
func boundWorkloads(bound []sessionsv1alpha1.BoundConsumer) string {
	if len(bound) == 0 {
		return "none"
	}
	names := make([]string, 0, len(bound))
	for _, b := range bound {
		names = append(names, fingerprint.Workload{Group: b.Workload.APIGroup, Kind: b.Workload.Kind, Name: b.Workload.Name}.String())
	}
	return strings.Join(names, ", ")
}
