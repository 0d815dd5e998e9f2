package session

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// crockford is Crockford's base32 alphabet (no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the number of base32 characters after the prefix (30 random bits: enough for a team's
// incidents, short enough to read out on a call; Open retries on the rare collision).
const idLen = 6

// The ID prefixes: an incident (one user) and a lockdown (many users on one card).
const (
	incidentPrefix = "INC"
	lockdownPrefix = "LCK"
)

// NewID returns a fresh incident ID, "INC-" + 6 Crockford base32 characters from crypto/rand.
// It returns an error only if the system's random source fails.
func NewID() (string, error) { return newID(incidentPrefix) }

// NewLockdownID returns a fresh lockdown ID, "LCK-" + 6 Crockford base32 characters, made like
// an incident ID.
func NewLockdownID() (string, error) { return newID(lockdownPrefix) }

// newID is the one ID generator: prefix + "-" + idLen characters of Crockford base32.
func newID(prefix string) (string, error) {
	var b [idLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random id: %w", err)
	}
	out := make([]byte, 0, len(prefix)+1+idLen)
	out = append(out, prefix...)
	out = append(out, '-')
	for _, c := range b {
		out = append(out, crockford[c&31]) // 256 is a multiple of 32: no bias
	}
	return string(out), nil
}

// NormalizeID turns what a person typed ("inc-7k2qxm", "INC7K2QXM", "7K2QXM", "INC-7K2QX0" typed
// with an O) into the canonical "INC-7K2QXM". Following Crockford, I and L read as 1 and O as 0.
// It reports false for anything that is not an incident ID.
func NormalizeID(s string) (string, bool) { return normalizeID(incidentPrefix, s, true) }

// NormalizeLockdownID is NormalizeID for a lockdown ID ("lck-7k2qxm" → "LCK-7K2QXM"); the prefix
// is required (six bare characters are read as an incident ID).
func NormalizeLockdownID(s string) (string, bool) { return normalizeID(lockdownPrefix, s, false) }

// normalizeID canonicalizes prefix-XXXXXX; bare allows the six characters without the prefix.
func normalizeID(prefix, s string, bare bool) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, prefix+"-"):
		s = s[len(prefix)+1:]
	case strings.HasPrefix(s, prefix) && len(s) == len(prefix)+idLen:
		s = s[len(prefix):]
	case !bare:
		return "", false
	}
	if len(s) != idLen {
		return "", false
	}
	out := make([]byte, 0, len(prefix)+1+idLen)
	out = append(out, prefix...)
	out = append(out, '-')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if strings.IndexByte(crockford, c) < 0 {
			return "", false
		}
		out = append(out, c)
	}
	return string(out), true
}
