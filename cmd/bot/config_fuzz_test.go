package main

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLoadConfig sets one or two variables of a good environment to any value (malformed,
// huge, control characters): loadConfig never panics; a refusal is a configError whose every
// line is short (a huge value is not echoed whole) and holds no secret's value; an accepted
// configuration keeps its numbers in their documented ranges.
func FuzzLoadConfig(f *testing.F) {
	vars := configVars(f)
	for _, s := range []struct {
		i, j uint8
		v, w string
	}{
		{0, 1, "", ""}, {3, 5, "xapp-", "xoxb-"}, {7, 9, "-1", "99999999999999999999"}, {2, 4, "1h", "-5m"},
		{11, 13, "https://pbx.example.com/ns-api/v2", "redis://:pw@127.0.0.1:1/0?master_name=m&addr=x"},
		{6, 8, strings.Repeat("U1,", 3000), strings.Repeat("\x00", 100)}, {10, 12, "restore,,deny", "YWJj"},
	} {
		f.Add(s.i, s.v, s.j, s.w)
	}
	secret := map[string]bool{}
	for _, v := range envOnly {
		secret[v.name] = v.secret
	}
	f.Fuzz(func(t *testing.T, i uint8, v string, j uint8, w string) {
		env := goodEnv()
		ki, kj := vars[int(i)%len(vars)], vars[int(j)%len(vars)]
		env[ki], env[kj] = v, w
		c, err := loadConfig("serve", nil, envMap(env), noFiles, needs{slack: true, pbx: true})
		if err != nil {
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("%s=%q %s=%q: error %T %v is not a configError", ki, v, kj, w, err, err)
			}
			for _, line := range ce.list {
				if len(line) > maxProblemLen {
					t.Errorf("a problem of %d bytes: %.200s…", len(line), line)
				}
				if !utf8.ValidString(line) {
					t.Errorf("a problem that is not UTF-8: %q", line)
				}
			}
			for k, val := range env {
				if secret[k] && len(strings.TrimSpace(val)) >= 6 && strings.Contains(err.Error(), strings.TrimSpace(val)) {
					t.Errorf("the error shows the value of the secret %s", k)
				}
			}
			return
		}
		if c.PINLength < 4 || c.PINLength > 12 || c.Workers < 1 || c.QueueSize < 1 || c.NSMaxInflight < 1 ||
			c.ApprovalTTL <= 0 || c.Retention <= 0 {
			t.Errorf("accepted out-of-range numbers: %+v", c)
		}
	})
}
