package remediate

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"

	"github.com/compromised-responder/bot/internal/netsapiens"
)

// randomDigits returns n digits from crypto/rand.
func randomDigits(n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			return "", fmt.Errorf("random digit: %w", err)
		}
		b[i] = byte('0' + v.Int64())
	}
	return string(b), nil
}

// trivialPIN reports whether pin is easy to guess: one repeated digit (1111), a run up or down
// (1234, 9876, also wrapping 7890), a repeated pair (121212) or the user's own extension.
func trivialPIN(pin, user string) bool {
	if len(pin) < 2 {
		return true
	}
	same, up, down, pair := true, true, true, len(pin) > 2
	for i := 1; i < len(pin); i++ {
		d := int(pin[i]) - int(pin[i-1])
		same = same && d == 0
		up = up && (d == 1 || d == -9)
		down = down && (d == -1 || d == 9)
		if i >= 2 {
			pair = pair && pin[i] == pin[i-2]
		}
	}
	if same || up || down || pair {
		return true
	}
	return user != "" && (pin == user || strings.Contains(pin, user) && len(user) >= 3)
}

// newPIN returns a random PIN of n digits that is not old and not trivial.
func newPIN(n int, old, user string) (netsapiens.Secret, error) {
	for range 1000 {
		p, err := randomDigits(n)
		if err != nil {
			return "", err
		}
		if p != old && !trivialPIN(p, user) {
			return netsapiens.Secret(p), nil
		}
	}
	return "", fmt.Errorf("no acceptable PIN of %d digits found", n)
}

// passwordAlphabet avoids characters that are easy to misread when typed into a phone.
const passwordAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// newSIPPassword returns a random SIP password for a rotation (the PBX generates 16
// characters on create; this is a little longer, from crypto/rand).
func newSIPPassword() (netsapiens.Secret, error) {
	b := make([]byte, 20)
	max := big.NewInt(int64(len(passwordAlphabet)))
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random password: %w", err)
		}
		b[i] = passwordAlphabet[v.Int64()]
	}
	return netsapiens.Secret(b), nil
}

// maskEmail masks each address of a ";"-separated list: "jane.doe@acme.example" →
// "j•••@acme.example". Anything that is not an address becomes "•••".
func maskEmail(list string) string {
	var out []string
	for _, a := range strings.Split(list, ";") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		at := strings.LastIndexByte(a, '@')
		if at <= 0 || at == len(a)-1 {
			out = append(out, "•••")
			continue
		}
		first := []rune(a[:at])[0]
		out = append(out, string(first)+"•••"+a[at:])
	}
	return strings.Join(out, "; ")
}
