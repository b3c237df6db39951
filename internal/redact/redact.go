// Package redact takes credentials out of URLs before they are logged, stored or shown: a
// forge's archive link carries a temporary token in its query, a misconfigured base URL may
// carry a user and password. Errors from HTTP clients quote the URL they failed on.
package redact

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
)

// Hidden replaces every query value and the user information of a URL.
const Hidden = "REDACTED"

// URL returns raw without its user information and fragment, and with every query value
// replaced by Hidden (the keys stay, for debugging). Which parameter holds a credential
// depends on the server (token, private_token, X-Amz-Signature…), so none is kept.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		// Unparsable: keep the scheme and what looks like the host, nothing after.
		scheme, rest, _ := strings.Cut(raw, "://")
		host, _, _ := strings.Cut(rest, "/")
		if _, h, ok := strings.Cut(host, "@"); ok {
			host = h
		}
		host, _, _ = strings.Cut(host, "?")
		return scheme + "://" + host + "/(unparsable URL)"
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery {
		return raw
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = Hidden
		} else {
			for k := range q {
				q[k] = []string{Hidden}
			}
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// urls finds absolute URLs in text; a quote, space or angle bracket ends one.
var urls = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>` + "`" + `]+`)

// Text redacts every URL in s (see URL). Punctuation right after a URL ("…?token=x: EOF")
// stays in the text.
func Text(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urls.ReplaceAllStringFunc(s, func(match string) string {
		u := strings.TrimRight(match, ".,:;!)]")
		return URL(u) + match[len(u):]
	})
}

// Error returns err with every URL in its message redacted. The *url.Error values in its chain
// are redacted in place, so that no caller unwrapping one finds the credential either; the
// chain stays intact for errors.Is and errors.As.
func Error(err error) error {
	if err == nil {
		return nil
	}
	for e := err; e != nil; {
		var ue *url.Error
		if !errors.As(e, &ue) {
			break
		}
		ue.URL = URL(ue.URL)
		e = ue.Err
	}
	msg := err.Error()
	if clean := Text(msg); clean != msg {
		return &redacted{msg: clean, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
