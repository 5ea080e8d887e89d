package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

// adoptingYAML is a credentials Secret holding a session file under session.json, and a
// TidalSession that adopts it.
func adoptingYAML(ns, name, clientID, file string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %[2]s-creds
  namespace: %[1]s
stringData:
  client_id: %[3]s
  client_secret: %[4]s
  session.json: '%[5]s'
---
apiVersion: sessions.tidal-mcp.dev/v1alpha1
kind: TidalSession
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  credentialsSecretRef: {name: %[2]s-creds, sessionFileKey: session.json}
  outputSecret: {name: %[2]s-token}
`, ns, name, clientID, canaryClientSecret, file)
}

var _ = Describe("Migration", func() {
	It("adopts a session from tidalapi's session file, and rejects a malformed one without touching anything", func() {
		ns := newNamespace()
		rt := issueGrant(longClient, 5590101, "PL")
		file := `{"token_type": {"data": "Bearer"}, "session_id": {"data": "s"}, "access_token": {"data": "stale"}, ` +
			`"refresh_token": {"data": "` + rt + `"}, "is_pkce": {"data": false}}`
		_, err := kubectl(adoptingYAML(ns, "olga", longClient, file), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(readyCondition(ns, "olga"), 30*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		Expect(getSession(ns, "olga").Status.UserID).To(Equal("5590101"))

		broken := `{"token_type": {"data": "Bearer"}, "refresh_token": ` + issueGrant(longClient, 5590102, "PL")
		_, err = kubectl(adoptingYAML(ns, "piet", longClient, broken), "apply", "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Eventually(readyCondition(ns, "piet"), 30*time.Second, 250*time.Millisecond).Should(And(
			HaveField("Reason", sessionsv1alpha1.ReasonCredentialsInvalid),
			HaveField("Message", And(ContainSubstring(`"session.json"`), ContainSubstring("not valid JSON")))))
		_, err = getSecret(ns, "piet-token")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an output Secret was written from a malformed file")
		creds := &corev1.Secret{}
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "piet-creds"}, creds)).To(Succeed())
		Expect(creds.Data).NotTo(HaveKey("refresh_token"), "the credentials Secret was changed")
	})

	It("moves the token when the output Secret is renamed, new Secret first", func() {
		ns := newNamespace()
		applySession(ns, "rita", longClient, issueGrant(longClient, 5590201, "PT"))
		Eventually(readyCondition(ns, "rita"), 30*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))
		old, err := getSecret(ns, "rita-token")
		Expect(err).NotTo(HaveOccurred())

		_, err = kubectl("", "-n", ns, "patch", "tidalsession", "rita", "--type", "merge",
			"-p", `{"spec":{"outputSecret":{"name":"rita-token-v2"}}}`)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error { _, err := getSecret(ns, "rita-token"); return err }, 30*time.Second, 250*time.Millisecond).
			Should(Satisfy(apierrors.IsNotFound))
		moved, err := getSecret(ns, "rita-token-v2")
		Expect(err).NotTo(HaveOccurred())
		Expect(moved.Data[sessionsv1alpha1.KeyAccessToken]).To(Equal(old.Data[sessionsv1alpha1.KeyAccessToken]))
		s := getSession(ns, "rita")
		Expect(s.Status.OutputSecretName).To(Equal("rita-token-v2"))
		Expect(s.Status.RefreshCount).To(BeEquivalentTo(1), "a move needs no refresh")
		out, err := kubectl("", "-n", ns, "events", "--for", "tidalsession/rita")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring(sessionsv1alpha1.ReasonOutputSecretMoved))
	})

	It("moves a session to another namespace without a new login (hack/move-session.sh)", func() {
		from, to := newNamespace(), newNamespace()
		rt := issueGrant(longClient, 5590301, "SE")
		applySession(from, "sven", longClient, rt)
		Eventually(readyCondition(from, "sven"), 30*time.Second, 250*time.Millisecond).Should(
			HaveField("Status", metav1.ConditionTrue))

		kubeconfig := filepath.Join(GinkgoT().TempDir(), "kubeconfig")
		Expect(os.WriteFile(kubeconfig, testEnv.KubeConfig, 0o600)).To(Succeed())
		cmd := exec.Command(filepath.Join("..", "..", "hack", "move-session.sh"), from, "sven", to)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "KUBECTL="+testEnv.ControlPlane.KubectlPath,
			"WAIT_TIMEOUT=60s")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		Expect(out.String()).NotTo(Or(ContainSubstring(rt), ContainSubstring(canaryClientSecret)), "the script printed a secret")
		Expect(err).NotTo(HaveOccurred(), out.String())
		Expect(out.String()).To(ContainSubstring("is Ready"))

		s := getSession(to, "sven")
		Expect(s.Status.Phase).To(Equal(sessionsv1alpha1.PhaseActive))
		Expect(s.Status.UserID).To(Equal("5590301"))
		Expect(s.Spec.Suspend).To(BeFalse())
		Expect(apierrors.IsNotFound(k8s.Get(context.Background(), types.NamespacedName{Namespace: from, Name: "sven"},
			&sessionsv1alpha1.TidalSession{}))).To(BeTrue())
		Expect(apierrors.IsNotFound(k8s.Get(context.Background(), types.NamespacedName{Namespace: from, Name: "sven-creds"},
			&corev1.Secret{}))).To(BeTrue())
		creds := &corev1.Secret{}
		Expect(k8s.Get(context.Background(), types.NamespacedName{Namespace: to, Name: "sven-creds"}, creds)).To(Succeed())
		Expect(creds.OwnerReferences).To(BeEmpty())
	})
})
