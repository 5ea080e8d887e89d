package support

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Tool runs a command-line client (kubectl, helm, kubectl with a plugin) against a test API
// server.
type Tool struct {
	Path string
	// Kubeconfig is passed in KUBECONFIG rather than --kubeconfig, because kubectl refuses
	// flags before a plugin's name and a plugin reads the variable itself.
	Kubeconfig string
	// Env is added to the environment, after everything else so that it wins.
	Env []string
	// Record, when set, receives each command line and its stdout and stderr, e.g. for the
	// leak search.
	Record io.Writer
}

// Output is one run of a Tool.
type Output struct {
	Stdout, Stderr string
	Err            error
}

// Exec runs the tool with args and stdin as given. HOME is a fresh directory, because helm
// and kubectl keep caches and configuration there: the user's must not change the test, nor
// the test the user's.
func (t Tool) Exec(stdin string, args ...string) Output {
	cmd := exec.Command(t.Path, args...)
	home := GinkgoT().TempDir()
	cmd.Env = append(os.Environ(), "HOME="+home, "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	if t.Kubeconfig != "" {
		cmd.Env = append(cmd.Env, "KUBECONFIG="+t.Kubeconfig)
	}
	cmd.Env = append(cmd.Env, t.Env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if t.Record != nil {
		fmt.Fprintf(t.Record, "$ %s %s\n%s%s", filepath.Base(t.Path), strings.Join(args, " "), out.String(),
			errOut.String())
	}
	return Output{Stdout: out.String(), Stderr: errOut.String(), Err: err}
}

// Run is Exec for callers that want stdout, or on failure stdout and stderr with an error that
// carries stderr: kubectl and helm fill it with messages about objects, never tokens.
func (t Tool) Run(stdin string, args ...string) (string, error) {
	o := t.Exec(stdin, args...)
	if o.Err != nil {
		return o.Stdout + o.Stderr,
			fmt.Errorf("%s %s: %w: %s", filepath.Base(t.Path), strings.Join(args, " "), o.Err, o.Stderr)
	}
	return o.Stdout, nil
}

// BuildBinary builds the program pkg ("./cmd/NAME", relative to the repository's root) into
// dir and returns the binary's path, so that a suite tests the program as a person runs it.
func BuildBinary(pkg, dir string) string {
	GinkgoHelper()
	bin, err := filepath.Abs(filepath.Join(dir, filepath.Base(pkg)))
	Expect(err).NotTo(HaveOccurred())
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = RepoPath()
	out, err := build.CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "go build %s: %s", pkg, out)
	return bin
}
