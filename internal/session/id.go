package session

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// crockford is Crockford's base32 alphabet (no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the number of base32 characters after "INC-" (30 random bits: enough for a team's
// incidents, short enough to read out on a call; Open retries on the rare collision).
const idLen = 6

// NewID returns a fresh incident ID, "INC-" + 6 Crockford base32 characters from crypto/rand.
// It returns an error only if the system's random source fails.
func NewID() (string, error) {
	var b [idLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("read random id: %w", err)
	}
	out := make([]byte, 0, 4+idLen)
	out = append(out, "INC-"...)
	for _, c := range b {
		out = append(out, crockford[c&31]) // 256 is a multiple of 32: no bias
	}
	return string(out), nil
}

// NormalizeID turns what a person typed ("inc-7k2qxm", "INC7K2QXM", "7K2QXM", "INC-7K2QX0" typed
// with an O) into the canonical "INC-7K2QXM". Following Crockford, I and L read as 1 and O as 0.
// It reports false for anything that is not an incident ID.
func NormalizeID(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasPrefix(s, "INC-"):
		s = s[4:]
	case strings.HasPrefix(s, "INC") && len(s) == 3+idLen:
		s = s[3:]
	}
	if len(s) != idLen {
		return "", false
	}
	out := make([]byte, 0, 4+idLen)
	out = append(out, "INC-"...)
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
