package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestErrorRatePolicyExample(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, t.TempDir()); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		"ingested 6 samples\n",
		"action: scale_up target=checkout policy=checkout_errors reason=error_rate_threshold\n",
		"decision: fired policy=checkout_errors target=checkout action=scale_up\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
