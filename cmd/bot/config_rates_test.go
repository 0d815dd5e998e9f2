package main

import (
	"os"
	"strings"
	"testing"
)

// RATES_FILE: the built-in table by default; a file that parses replaces it; a broken or
// missing one stops start-up naming the file and each problem.
func TestLoadConfigRatesFile(t *testing.T) {
	c, err := loadConfig("serve", nil, envMap(goodEnv()), noFiles, needs{slack: true, pbx: true})
	if err != nil || c.Rates == nil || c.Rates.Lookup("2348031234567").Label != "Nigeria" {
		t.Fatalf("default rate table: %v, %+v", err, c.Rates)
	}
	files := map[string]string{
		"/etc/rates.json": `{"currency":"EUR","home_country_code":"49","national_number_digits":10,"international_prefixes":["00"],
			"default_class":"international","default_label":"other","default_per_minute":1,
			"rates":[{"prefix":"49","label":"Deutschland","class":"domestic","per_minute":0.02}]}`,
		"/etc/bad.json": `{"currency":"euro","rates":[{"prefix":"4x","label":"","class":"cheap","per_minute":-1}]}`,
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	env := goodEnv()
	env["RATES_FILE"] = "/etc/rates.json"
	c, err = loadConfig("serve", nil, envMap(env), read, needs{slack: true, pbx: true})
	if err != nil || c.Rates.Currency != "EUR" || c.Rates.Lookup("4930123456").Label != "Deutschland" {
		t.Fatalf("RATES_FILE table: %v, %+v", err, c.Rates)
	}
	env["RATES_FILE"] = "/etc/bad.json"
	_, err = loadConfig("serve", nil, envMap(env), read, needs{slack: true, pbx: true})
	for _, want := range []string{"RATES_FILE /etc/bad.json", `currency "euro"`, `prefix "4x"`, `class "cheap"`, "per_minute -1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad table: error %v does not name %q", err, want)
		}
	}
	env["RATES_FILE"] = "/etc/missing.json"
	if _, err = loadConfig("serve", nil, envMap(env), read, needs{slack: true, pbx: true}); err == nil ||
		!strings.Contains(err.Error(), "RATES_FILE: cannot read /etc/missing.json") {
		t.Errorf("missing table: %v", err)
	}
}
