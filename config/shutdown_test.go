package config

import (
	"strings"
	"testing"
	"time"
)

func TestShutdownGrace(t *testing.T) {
	c := Default()
	if c.ShutdownGrace.Duration != 20*time.Second {
		t.Errorf("default shutdownGrace %v, want 20s (under Kubernetes' 30s termination grace)", c.ShutdownGrace.Duration)
	}
	c.ShutdownGrace.Duration = -time.Second
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shutdownGrace must not be negative") {
		t.Errorf("validate: %v", err)
	}
}
