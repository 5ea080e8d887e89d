package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BindingMode says what the operator does when a pod that is not bound to a session mounts
// or references its output Secret.
// +kubebuilder:validation:Enum=Observe;Enforce
type BindingMode string

const (
	// BindingObserve learns the first consumers and reports every other one (condition Bound
	// False, a Warning Event, the security-event metric), but keeps refreshing.
	BindingObserve BindingMode = "Observe"
	// BindingEnforce does what Observe does and, on a violation, quarantines the session: the
	// output Secret loses its access token and is not refreshed until a person approves
	// (BindingApprovalAnnotation).
	BindingEnforce BindingMode = "Enforce"
)

// BindingPolicy binds a session to the workloads allowed to consume it. See docs/binding.md.
type BindingPolicy struct {
	// mode is Observe or Enforce.
	// +required
	Mode BindingMode `json:"mode"`

	// allowed names the consumers that are bound whenever they appear. Without it, the
	// consumers present when the operator first looks are bound (trust on first use), and
	// every later one needs a person's approval.
	// +optional
	Allowed *AllowedConsumers `json:"allowed,omitempty"`
}

// AllowedConsumers says which pods may consume a session. A pod is allowed when it matches
// every field that is set: with both set, it must run under a listed ServiceAccount and
// match the selector.
//
// +kubebuilder:validation:XValidation:rule="has(self.serviceAccounts) || has(self.podSelector)",message="binding.allowed must set serviceAccounts, podSelector or both; leave binding.allowed out to bind the first consumers"
// +kubebuilder:validation:XValidation:rule="!has(self.podSelector) || (has(self.podSelector.matchLabels) && size(self.podSelector.matchLabels) > 0) || (has(self.podSelector.matchExpressions) && size(self.podSelector.matchExpressions) > 0)",message="binding.allowed.podSelector must not be empty: an empty selector allows every pod",fieldPath=".podSelector"
type AllowedConsumers struct {
	// serviceAccounts are the names of ServiceAccounts, in the session's namespace, whose pods
	// may consume the session.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.all(n, n.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))",message="binding.allowed.serviceAccounts must hold ServiceAccount names (lowercase letters, digits, '-' and '.')"
	ServiceAccounts []string `json:"serviceAccounts,omitempty"`

	// podSelector selects, by label, the pods of the session's namespace that may consume the
	// session. Labels are set by whoever creates the pod, so a selector alone trusts everyone
	// who may create pods in the namespace; combine it with serviceAccounts to narrow it.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// WorkloadReference names the workload a fingerprint stands for, in the session's namespace.
type WorkloadReference struct {
	// apiGroup is the workload's API group: apps for a Deployment, batch for a CronJob, empty
	// for a bare Pod.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	APIGroup string `json:"apiGroup,omitempty"`

	// kind is the workload's kind: Deployment, StatefulSet, DaemonSet, CronJob, Job,
	// ReplicaSet or Pod, or another controller's kind.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Kind string `json:"kind"`

	// name is the workload's name.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// BoundConsumer is a fingerprint bound to the session, and what it stands for.
type BoundConsumer struct {
	// fingerprint is the consumer's device fingerprint ("v1:" and 64 hex digits).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	Fingerprint string `json:"fingerprint"`

	// serviceAccount is the ServiceAccount the consumer's pods run under.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// workload is the workload the fingerprint stands for.
	// +required
	Workload WorkloadReference `json:"workload"`

	// firstSeen is when the operator first saw a pod of this fingerprint.
	// +required
	FirstSeen metav1.Time `json:"firstSeen"`
}

// ViolationType says how a consumer failed to match the binding.
// +kubebuilder:validation:Enum=ConsumerMismatch;FingerprintChanged
type ViolationType string

const (
	// ViolationConsumerMismatch: a workload the binding does not know consumes the session.
	ViolationConsumerMismatch ViolationType = "ConsumerMismatch"
	// ViolationFingerprintChanged: a bound workload now consumes the session under another
	// fingerprint, e.g. another ServiceAccount.
	ViolationFingerprintChanged ViolationType = "FingerprintChanged"
)

// BindingViolation is a consumer that did not match the binding, reported once per
// fingerprint until a person approves.
type BindingViolation struct {
	// fingerprint is the consumer's device fingerprint.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=80
	Fingerprint string `json:"fingerprint"`

	// type is how the consumer failed to match.
	// +required
	Type ViolationType `json:"type"`

	// pod is the first pod of this fingerprint the operator saw.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Pod string `json:"pod"`

	// serviceAccount is the ServiceAccount the pod runs under.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccount string `json:"serviceAccount,omitempty"`

	// workload is the workload the fingerprint stands for.
	// +required
	Workload WorkloadReference `json:"workload"`

	// firstSeen is when the operator first saw the violation.
	// +required
	FirstSeen metav1.Time `json:"firstSeen"`
}

// BindingStatus is what the operator knows about a session's consumers.
type BindingStatus struct {
	// bound are the fingerprints bound to the session: learned, allowed by spec.binding.allowed
	// or approved by a person. At most 32; beyond that, new consumers are violations.
	// +optional
	// +listType=map
	// +listMapKey=fingerprint
	// +kubebuilder:validation:MaxItems=32
	Bound []BoundConsumer `json:"bound,omitempty"`

	// violators are the consumers that did not match since the last approval, one per
	// fingerprint. At most 16 are listed; violations counts them all.
	// +optional
	// +listType=map
	// +listMapKey=fingerprint
	// +kubebuilder:validation:MaxItems=16
	Violators []BindingViolation `json:"violators,omitempty"`

	// violations counts the violations reported since the session was created.
	// +optional
	Violations int64 `json:"violations,omitempty"`

	// quarantinedAt is when the session was quarantined (Enforce mode): while set, the output
	// Secret holds no access token and is not refreshed.
	// +optional
	QuarantinedAt *metav1.Time `json:"quarantinedAt,omitempty"`

	// quarantineReason says what quarantined the session: a consumer that did not match, or
	// an anomaly such as another identity behind the session.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	QuarantineReason string `json:"quarantineReason,omitempty"`

	// lastApproval is the value of the approve-binding annotation the operator last handled.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	LastApproval string `json:"lastApproval,omitempty"`

	// newConsumerTimes are when new fingerprints were first seen within the operator's
	// consumer-burst window, for the burst rule.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	NewConsumerTimes []metav1.Time `json:"newConsumerTimes,omitempty"`

	// violationTimes are when violations were reported within the operator's repeated-
	// violation window, for the repeated-violations rule.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	ViolationTimes []metav1.Time `json:"violationTimes,omitempty"`
}
