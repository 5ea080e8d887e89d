package support

import (
	"testing"

	. "github.com/onsi/gomega"
)

// The leak search is what every suite ends with: it must find a remembered value and must
// not print it when it does.
func TestSecretsExpectNoneIn(t *testing.T) {
	RegisterTestingT(t)
	secrets := NewSecrets("CANARY-CLIENT-SECRET-abcdef", "")
	Expect(secrets.Remember("CANARY-RT-0123456789")).To(Equal("CANARY-RT-0123456789"))
	Expect(secrets.Len()).To(Equal(2), "the empty value is not remembered")

	Expect(InterceptGomegaFailures(func() {
		secrets.ExpectNoneIn("nothing to see here", "the logs")
	})).To(BeEmpty())

	failures := InterceptGomegaFailures(func() {
		secrets.ExpectNoneIn("log line: token=CANARY-RT-0123456789", "the logs")
	})
	Expect(failures).To(HaveLen(1))
	Expect(failures[0]).To(ContainSubstring(`(20 chars, starting "CANARY") reached the logs`))
	Expect(failures[0]).NotTo(ContainSubstring("0123456789"))
}
