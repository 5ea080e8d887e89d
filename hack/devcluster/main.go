// Command devcluster runs a local Kubernetes control plane (etcd and kube-apiserver, the
// binaries hack/tools.sh builds) for the demo, with the project's CRDs installed, and
// writes an admin kubeconfig. It is envtest's control plane, started as a program instead
// of from a test, so that kubectl, helm and the operator can all use it.
//
// It runs until SIGINT, SIGTERM or SIGHUP (a closed terminal), then stops the control plane and removes its data.
// There is no scheduler and no kubelet: Pods are stored but never run.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func main() {
	assets := flag.String("assets", "bin/k8s", "folder holding etcd, kube-apiserver and kubectl")
	crds := flag.String("crds", "config/crd/bases", "folder of CRD manifests to install")
	kubeconfig := flag.String("write-kubeconfig", "", "file to write the admin kubeconfig to (required)")
	flag.Parse()
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "devcluster: --write-kubeconfig is required")
		os.Exit(2)
	}
	if err := run(*assets, *crds, *kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

func run(assets, crds, kubeconfig string) error {
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{crds},
		ErrorIfCRDPathMissing: true,
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("failed to start the control plane: %w", err)
	}
	// Stop even when writing the kubeconfig fails, or etcd and kube-apiserver linger.
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "devcluster: failed to stop the control plane:", err)
		}
	}()

	// Written through a rename, so a script polling for the file never reads half of it.
	tmp := filepath.Join(filepath.Dir(kubeconfig), "."+filepath.Base(kubeconfig)+".tmp")
	if err := os.WriteFile(tmp, env.KubeConfig, 0o600); err != nil {
		return fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	if err := os.Rename(tmp, kubeconfig); err != nil {
		return fmt.Errorf("failed to write the kubeconfig: %w", err)
	}
	fmt.Printf("control plane ready at %s; kubeconfig %s\n", env.Config.Host, kubeconfig)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	<-stop
	fmt.Println("control plane stopping")
	return nil
}
