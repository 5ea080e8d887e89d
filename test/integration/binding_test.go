package integration

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
	"github.com/tidal-mcp/tidal-session-operator/internal/metrics"
)

// No kubelet or controllers run against the test API server, so the specs create what the
// Deployment controller would (ReplicaSets, their pods with owner references) themselves.

func createObject(obj client.Object) {
	GinkgoHelper()
	Expect(k8s.Create(context.Background(), obj)).To(Succeed())
}

func createServiceAccounts(ns string, names ...string) {
	GinkgoHelper()
	for _, n := range names {
		createObject(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: ns}})
	}
}

// createDeployment creates a Deployment of one container whose pods mount secret.
func createDeployment(ns, name string) *appsv1.Deployment {
	GinkgoHelper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "mcp", Image: "mcp:1"}}}}}}
	createObject(d)
	return d
}

// createReplicaSet creates the ReplicaSet the Deployment controller would create for a
// rollout whose pod-template-hash is hash.
func createReplicaSet(d *appsv1.Deployment, hash string) *appsv1.ReplicaSet {
	GinkgoHelper()
	labels := map[string]string{"app": d.Name, "pod-template-hash": hash}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: d.Spec.Template.Spec}}}
	createObject(rs)
	return rs
}

// consumerPod is a pod under sa that references secret the way ref says: "volume",
// "projected", "env" or "envFrom"; rs, when set, controls it.
func consumerPod(ns, name, sa, secret, ref string, rs *appsv1.ReplicaSet) *corev1.Pod {
	c := corev1.Container{Name: "mcp", Image: "mcp:1"}
	spec := corev1.PodSpec{ServiceAccountName: sa, AutomountServiceAccountToken: ptr.To(false)}
	switch ref {
	case "volume":
		spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: secret}}}}
	case "projected":
		spec.Volumes = []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{
				LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}}}}}
	case "env":
		c.Env = []corev1.EnvVar{{Name: "TIDAL_TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: sessionsv1alpha1.KeyAccessToken}}}}
	case "envFrom":
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: secret}}}}
	}
	spec.Containers = []corev1.Container{c}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec}
	if rs != nil {
		pod.Labels = rs.Spec.Template.Labels
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name,
			UID: rs.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	}
	createObject(pod)
	return pod
}

// sessionEvents lists the Events about session name with the given reason.
func sessionEvents(ns, name, reason string) []eventsv1.Event {
	list := &eventsv1.EventList{}
	Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "TidalSession" && e.Regarding.Name == name && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

func boundCondition(ns, name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		return meta.FindStatusCondition(getSession(ns, name).Status.Conditions, sessionsv1alpha1.ConditionBound)
	}
}

func boundWorkloads(ns, name string) func() []string {
	return func() []string {
		var out []string
		if b := getSession(ns, name).Status.Binding; b != nil {
			for _, c := range b.Bound {
				out = append(out, c.Workload.Kind+"/"+c.Workload.Name)
			}
		}
		return out
	}
}

// requestAt annotates the session with key set to the time now, as a person would.
func requestAt(ns, name, key string) {
	GinkgoHelper()
	_, err := kubectl("", "-n", ns, "annotate", "tidalsession", name, "--overwrite",
		key+"="+time.Now().UTC().Format(time.RFC3339))
	Expect(err).NotTo(HaveOccurred())
}

// outputData is the data of the output Secret, read as a Gomega poll.
func outputData(g Gomega, ns, name string) map[string][]byte {
	s, err := getSecret(ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	return s.Data
}

func securityEvents(typ string) float64 {
	return testutil.ToFloat64(metrics.SecurityEvents.WithLabelValues(typ))
}

func applyBoundSession(ns, name, mode string) {
	GinkgoHelper()
	_, err := kubectl(credentialsSecretYAML(ns, name+"-creds", longClient, issueGrant(longClient, 5590001, "NO"))+"---\n"+
		sessionYAML(ns, name, name+"-creds", name+"-token")+"  binding: {mode: "+mode+"}\n", "apply", "-f", "-")
	Expect(err).NotTo(HaveOccurred())
}

var _ = Describe("Session binding", func() {
	It("learns the first consumers in Observe mode, stays quiet through a rollout and reports a foreign pod", func() {
		ns := newNamespace()
		createServiceAccounts(ns, "mcp", "intruder")
		deploy := createDeployment(ns, "mcp")
		rs1 := createReplicaSet(deploy, "5d4f8b")
		consumerPod(ns, "mcp-5d4f8b-aaaaa", "mcp", "ada-token", "volume", rs1)
		consumerPod(ns, "mcp-5d4f8b-bbbbb", "mcp", "ada-token", "volume", rs1)
		consumerPod(ns, "debug", "mcp", "ada-token", "envFrom", nil)
		consumerPod(ns, "bystander", "intruder", "some-other-secret", "volume", nil)

		applyBoundSession(ns, "ada", "Observe")
		Eventually(boundWorkloads(ns, "ada"), 20*time.Second, 250*time.Millisecond).Should(
			ConsistOf("Deployment/mcp", "Pod/debug"))
		Eventually(readyCondition(ns, "ada"), 20*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(boundCondition(ns, "ada")()).To(HaveField("Status", metav1.ConditionTrue))
		Expect(sessionEvents(ns, "ada", sessionsv1alpha1.ReasonConsumerBound)).NotTo(BeEmpty())

		By("rolling the Deployment out: a new ReplicaSet, new pods, the old ones gone")
		mismatches, changes := securityEvents(metrics.SecurityConsumerMismatch), securityEvents(metrics.SecurityFingerprintChanged)
		rs2 := createReplicaSet(deploy, "77c9aa")
		consumerPod(ns, "mcp-77c9aa-ccccc", "mcp", "ada-token", "volume", rs2)
		consumerPod(ns, "mcp-77c9aa-ddddd", "mcp", "ada-token", "volume", rs2)
		for _, old := range []string{"mcp-5d4f8b-aaaaa", "mcp-5d4f8b-bbbbb"} {
			Expect(k8s.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: old, Namespace: ns}},
				client.GracePeriodSeconds(0))).To(Succeed())
		}
		Expect(k8s.Delete(context.Background(), rs1)).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(sessionEvents(ns, "ada", sessionsv1alpha1.ReasonConsumerMismatch)).To(BeEmpty())
			g.Expect(sessionEvents(ns, "ada", sessionsv1alpha1.ReasonFingerprintChanged)).To(BeEmpty())
			g.Expect(boundCondition(ns, "ada")()).To(HaveField("Status", metav1.ConditionTrue))
			g.Expect(boundWorkloads(ns, "ada")()).To(ConsistOf("Deployment/mcp", "Pod/debug"))
		}, 5*time.Second, 500*time.Millisecond).Should(Succeed())
		Expect(securityEvents(metrics.SecurityConsumerMismatch)).To(Equal(mismatches))
		Expect(securityEvents(metrics.SecurityFingerprintChanged)).To(Equal(changes))

		By("a pod of another ServiceAccount reading the Secret through a projected volume")
		start := time.Now()
		consumerPod(ns, "rogue", "intruder", "ada-token", "projected", nil)
		Eventually(func() []eventsv1.Event { return sessionEvents(ns, "ada", sessionsv1alpha1.ReasonConsumerMismatch) },
			10*time.Second, 100*time.Millisecond).Should(HaveLen(1))
		GinkgoWriter.Printf("foreign consumer reported after %v\n", time.Since(start).Round(time.Millisecond))
		ev := sessionEvents(ns, "ada", sessionsv1alpha1.ReasonConsumerMismatch)[0]
		Expect(ev.Type).To(Equal(corev1.EventTypeWarning))
		s := getSession(ns, "ada")
		Expect(s.Status.Binding.Violators).To(HaveLen(1))
		Expect(ev.Note).To(And(ContainSubstring("pod rogue"), ContainSubstring(s.Status.Binding.Violators[0].Fingerprint),
			ContainSubstring("ServiceAccount intruder")))
		Expect(boundCondition(ns, "ada")()).To(And(HaveField("Status", metav1.ConditionFalse),
			HaveField("Reason", sessionsv1alpha1.ReasonConsumerMismatch)))
		Expect(securityEvents(metrics.SecurityConsumerMismatch)).To(Equal(mismatches + 1))
		Expect(metricsText()).To(ContainSubstring(`tidal_session_security_events_total{type="consumer_mismatch"}`))
		secret, err := getSecret(ns, "ada-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(secret.Data[sessionsv1alpha1.KeyAccessToken]).NotTo(BeEmpty(), "Observe never withholds the token")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))

		By("a second foreign pod seconds later: its own Event, not folded into the first one's")
		consumerPod(ns, "rogue-2", "intruder", "ada-token", "env", nil)
		Eventually(func() []string {
			var notes []string
			for _, e := range sessionEvents(ns, "ada", sessionsv1alpha1.ReasonConsumerMismatch) {
				notes = append(notes, e.Note)
			}
			return notes
		}, 10*time.Second, 100*time.Millisecond).Should(ConsistOf(ContainSubstring("pod rogue "),
			ContainSubstring("pod rogue-2 ")))
	})

	It("quarantines the session in Enforce mode until a person approves, then writes a fresh token", func() {
		ns := newNamespace()
		createServiceAccounts(ns, "mcp", "intruder")
		rs := createReplicaSet(createDeployment(ns, "mcp"), "5d4f8b")
		consumerPod(ns, "mcp-5d4f8b-aaaaa", "mcp", "eve-token", "volume", rs)
		applyBoundSession(ns, "eve", "Enforce")
		Eventually(readyCondition(ns, "eve"), 20*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Eventually(boundWorkloads(ns, "eve"), 10*time.Second, 250*time.Millisecond).Should(ConsistOf("Deployment/mcp"))
		secret, err := getSecret(ns, "eve-token")
		Expect(err).NotTo(HaveOccurred())
		first := string(secret.Data[sessionsv1alpha1.KeyAccessToken])
		Expect(first).NotTo(BeEmpty())
		refreshes := getSession(ns, "eve").Status.RefreshCount

		By("a pod of another ServiceAccount reading the token through env")
		quarantines := securityEvents(metrics.SecurityQuarantined)
		consumerPod(ns, "rogue", "intruder", "eve-token", "env", nil)
		Eventually(func(g Gomega) {
			data := outputData(g, ns, "eve-token")
			g.Expect(data).To(HaveKey(sessionsv1alpha1.KeyAccessToken))
			g.Expect(data[sessionsv1alpha1.KeyAccessToken]).To(BeEmpty())
			g.Expect(data[sessionsv1alpha1.KeySessionFile]).To(BeEmpty())
			g.Expect(string(data[sessionsv1alpha1.KeyTokenStatus])).To(Equal(sessionsv1alpha1.TokenStatusQuarantined))
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		s := getSession(ns, "eve")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseQuarantined))
		Expect(readyCondition(ns, "eve")()).To(HaveField("Reason", sessionsv1alpha1.ReasonQuarantined))
		Expect(boundCondition(ns, "eve")()).To(HaveField("Status", metav1.ConditionFalse))
		Expect(securityEvents(metrics.SecurityQuarantined)).To(Equal(quarantines + 1))
		Expect(sessionEvents(ns, "eve", sessionsv1alpha1.ReasonConsumerMismatch)).To(HaveLen(1))

		By("asking for a refresh, which a quarantine holds back")
		requestAt(ns, "eve", sessionsv1alpha1.RefreshRequestAnnotation)
		Consistently(func(g Gomega) {
			g.Expect(outputData(g, ns, "eve-token")[sessionsv1alpha1.KeyAccessToken]).To(BeEmpty())
			g.Expect(getSession(ns, "eve").Status.RefreshCount).To(Equal(refreshes))
		}, 5*time.Second, 500*time.Millisecond).Should(Succeed())

		By("a person approving the current consumers")
		requestAt(ns, "eve", sessionsv1alpha1.BindingApprovalAnnotation)
		Eventually(func(g Gomega) {
			data := outputData(g, ns, "eve-token")
			g.Expect(string(data[sessionsv1alpha1.KeyTokenStatus])).To(Equal(sessionsv1alpha1.TokenStatusValid))
			g.Expect(string(data[sessionsv1alpha1.KeyAccessToken])).NotTo(Or(BeEmpty(), Equal(first)))
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		s = getSession(ns, "eve")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(s.Status.RefreshCount).To(Equal(refreshes + 1))
		Expect(s.Status.Binding.QuarantinedAt).To(BeNil())
		Expect(boundWorkloads(ns, "eve")()).To(ConsistOf("Deployment/mcp", "Pod/rogue"))
		Expect(sessionEvents(ns, "eve", sessionsv1alpha1.ReasonBindingApproved)).To(HaveLen(1))

		By("checking that no Event of the session carries either token")
		list := &eventsv1.EventList{}
		Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(Succeed())
		fresh, err := getSecret(ns, "eve-token")
		Expect(err).NotTo(HaveOccurred())
		for _, e := range list.Items {
			Expect(strings.Contains(e.Note, first)).To(BeFalse())
			Expect(strings.Contains(e.Note, string(fresh.Data[sessionsv1alpha1.KeyAccessToken]))).To(BeFalse())
		}
	})
})

var _ = Describe("Session binding validation", func() {
	DescribeTable("rejects a bad binding at creation, naming the field",
		func(name, binding string, want ...string) {
			ns := newNamespace()
			out, err := kubectl(sessionManifest(ns, name, validationBase+binding), "apply", "-f", "-")
			Expect(err).To(HaveOccurred(), "kubectl apply accepted it: %s", out)
			for _, w := range want {
				Expect(out).To(ContainSubstring(w))
			}
			Expect(sessionExists(ns, name)).To(BeFalse(), "a rejected session was stored")
		},
		Entry("unknown mode", "mode", "  binding: {mode: Audit}\n",
			"spec.binding.mode: Unsupported value", "Observe", "Enforce"),
		Entry("no mode", "nomode", "  binding: {allowed: {serviceAccounts: [mcp]}}\n", "spec.binding.mode: Required value"),
		Entry("allowed without anything", "empty", "  binding: {mode: Observe, allowed: {}}\n",
			"binding.allowed must set serviceAccounts, podSelector or both"),
		Entry("empty pod selector", "everyone", "  binding: {mode: Enforce, allowed: {podSelector: {}}}\n",
			"spec.binding.allowed.podSelector: Invalid value", "an empty selector allows every pod"),
		Entry("not a ServiceAccount name", "badsa", "  binding: {mode: Enforce, allowed: {serviceAccounts: [Not_A_Name]}}\n",
			"spec.binding.allowed.serviceAccounts: Invalid value", "binding.allowed.serviceAccounts must hold ServiceAccount names"),
		Entry("too many ServiceAccounts", "manysa", "  binding: {mode: Enforce, allowed: {serviceAccounts: ["+
			strings.TrimSuffix(strings.Repeat("a,", 17), ",")+"]}}\n",
			"spec.binding.allowed.serviceAccounts: Too many"),
	)

	It("accepts an allowed list of ServiceAccounts and a selector", func() {
		ns := newNamespace()
		out, err := kubectl(sessionManifest(ns, "fine", validationBase+"  binding: {mode: Enforce, allowed: "+
			"{serviceAccounts: [mcp, mcp-canary], podSelector: {matchLabels: {app: mcp}}}}\n"), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred(), out)
	})
})
