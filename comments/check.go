package comments

import (
	"fmt"
	"strings"
)

// CheckMarkdown reports a comment body that would render broken: a code fence left open, or
// a <details> not closed (outside code). Every body Render returns passes it.
func CheckMarkdown(body string) error {
	fence := ""
	details := 0
	for i, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, "`") == "" {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			fence = trimmed[:len(trimmed)-len(strings.TrimLeft(trimmed, "`"))]
			continue
		}
		details += strings.Count(line, "<details") - strings.Count(line, "</details>")
		if details < 0 {
			return fmt.Errorf("line %d: </details> without <details>", i+1)
		}
	}
	if fence != "" {
		return fmt.Errorf("code fence %q left open", fence)
	}
	if details != 0 {
		return fmt.Errorf("%d <details> left open", details)
	}
	return nil
}
