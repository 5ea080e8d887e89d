// Package v1alpha1 holds the TidalSession API of the sessions.tidal-mcp.dev group.
//
// +kubebuilder:object:generate=true
// +groupName=sessions.tidal-mcp.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the TidalSession API.
	GroupVersion = schema.GroupVersion{Group: "sessions.tidal-mcp.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the API's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
