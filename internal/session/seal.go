package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// sealVersion prefixes every sealed value, so the format can change without guessing.
const sealVersion = "v1"

// Sealer seals the few credentials a snapshot must keep (a device's provisioning username and
// password) with AES-256-GCM: a random nonce per value, the incident ID and field name as
// associated data (a sealed value moved to another incident or field does not open), and a key ID
// in the output so a rotated key fails clearly instead of looking like corruption.
type Sealer struct {
	aead  cipher.AEAD
	keyID string
}

// NewSealer returns a Sealer for a 32-byte key. keyID names the key in sealed values; "" derives
// one from the key (a short one-way fingerprint). Errors: ErrInvalid for a key that is not 32
// bytes or a key ID with characters other than [A-Za-z0-9._-].
func NewSealer(key []byte, keyID string) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("sealing key has %d bytes, need 32: %w", len(key), ErrInvalid)
	}
	if keyID == "" {
		keyID = fingerprint("cr snapshot key id", key)
	}
	if !validName(keyID, 32) {
		return nil, fmt.Errorf("sealing key id %q: %w", keyID, ErrInvalid)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	return &Sealer{aead: aead, keyID: keyID}, nil
}

// KeyID names the key of this Sealer.
func (s *Sealer) KeyID() string { return s.keyID }

// Seal returns "v1:<keyid>:<base64(nonce|ciphertext)>". It fails only if the random source does.
func (s *Sealer) Seal(incidentID, field, plaintext string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s: read nonce: %w", field, err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(plaintext), sealAD(incidentID, field))
	return sealVersion + ":" + s.keyID + ":" + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open returns the plaintext of a sealed value. Errors: ErrKeyMismatch (sealed under another key;
// the message names both key IDs), ErrBadSeal (malformed, tampered, or sealed for another incident
// or field). The error never contains the sealed or opened value.
func (s *Sealer) Open(incidentID, field, sealed string) (string, error) {
	ver, rest, ok := strings.Cut(sealed, ":")
	if !ok || ver != sealVersion {
		return "", fmt.Errorf("open %s: unknown format: %w", field, ErrBadSeal)
	}
	kid, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return "", fmt.Errorf("open %s: unknown format: %w", field, ErrBadSeal)
	}
	if kid != s.keyID {
		if !validName(kid, 32) {
			return "", fmt.Errorf("open %s: bad key id: %w", field, ErrBadSeal)
		}
		return "", fmt.Errorf("open %s: sealed under key %s, SNAPSHOT_KEY is key %s: %w", field, kid, s.keyID, ErrKeyMismatch)
	}
	raw, err := base64.RawStdEncoding.Strict().DecodeString(b64)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return "", fmt.Errorf("open %s: bad encoding: %w", field, ErrBadSeal)
	}
	n := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:n], raw[n:], sealAD(incidentID, field))
	if err != nil {
		return "", fmt.Errorf("open %s: %w", field, ErrBadSeal)
	}
	return string(pt), nil
}

func sealAD(incidentID, field string) []byte { return []byte(incidentID + "\x00" + field) }

// fingerprint is a short one-way name of a key under a label.
func fingerprint(label string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// deriveHMACKey derives SecretHMAC's key from SNAPSHOT_KEY, else AUDIT_KEY, under its own label, so
// it is never the same key as the sealing or audit key. nil if neither is set.
func deriveHMACKey(snapshotKey, auditKey []byte) ([]byte, string) {
	base := snapshotKey
	if base == nil {
		base = auditKey
	}
	if base == nil {
		return nil, ""
	}
	m := hmac.New(sha256.New, base)
	m.Write([]byte("cr secret hmac v1"))
	k := m.Sum(nil)
	return k, fingerprint("cr secret hmac key id", k)
}

// Keyring holds the keys for the few secrets the engine must keep or compare: it seals
// provisioning credentials under SNAPSHOT_KEY and makes HMACs of old secrets (SIP password, PIN)
// under a key derived from SNAPSHOT_KEY, else AUDIT_KEY. It has no Redis: what it makes is stored
// through the Store like any other value. The zero keys give a Keyring that refuses with ErrNoKey.
// It is safe for concurrent use.
type Keyring struct {
	sealer    *Sealer // nil = no SNAPSHOT_KEY
	hmacKey   []byte  // derived key for SecretHMAC; nil = no key configured
	hmacKeyID string
}

// NewKeyring returns the Keyring for SNAPSHOT_KEY (nil or exactly 32 bytes) and AUDIT_KEY (nil
// or at least 32 bytes). Errors: ErrInvalid for a key of the wrong length.
func NewKeyring(snapshotKey, auditKey []byte) (*Keyring, error) {
	if auditKey != nil && len(auditKey) < 32 {
		return nil, fmt.Errorf("session: audit key has %d bytes, need at least 32: %w", len(auditKey), ErrInvalid)
	}
	k := &Keyring{}
	if snapshotKey != nil {
		sl, err := NewSealer(snapshotKey, "")
		if err != nil {
			return nil, fmt.Errorf("session: snapshot key: %w", err)
		}
		k.sealer = sl
	}
	k.hmacKey, k.hmacKeyID = deriveHMACKey(snapshotKey, auditKey)
	return k, nil
}

// Seal seals a credential of an incident's snapshot under SNAPSHOT_KEY (see Sealer).
// Errors: ErrNoKey without SNAPSHOT_KEY.
func (s *Keyring) Seal(incidentID, field, plaintext string) (string, error) {
	if s.sealer == nil {
		return "", fmt.Errorf("seal %s: SNAPSHOT_KEY: %w", field, ErrNoKey)
	}
	return s.sealer.Seal(incidentID, field, plaintext)
}

// Unseal opens a value sealed by Seal. Errors: ErrNoKey, ErrKeyMismatch, ErrBadSeal.
func (s *Keyring) Unseal(incidentID, field, sealed string) (string, error) {
	if s.sealer == nil {
		return "", fmt.Errorf("open %s: SNAPSHOT_KEY: %w", field, ErrNoKey)
	}
	return s.sealer.Open(incidentID, field, sealed)
}

// SecretHMAC returns "h1:<keyid>:<hex HMAC-SHA256>" of an old secret (SIP password, PIN), to prove
// later that the new one differs without keeping the old one. The key is derived from SNAPSHOT_KEY,
// else AUDIT_KEY, and never stored in Redis. With neither key it returns "": a salted hash kept in
// Redis would not protect a 6-digit PIN against a brute force, so the engine must then compare old
// and new values in memory only, while it still holds both.
func (s *Keyring) SecretHMAC(incidentID, field, value string) string {
	if s.hmacKey == nil {
		return ""
	}
	m := hmac.New(sha256.New, s.hmacKey)
	m.Write(sealAD(incidentID, field))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return "h1:" + s.hmacKeyID + ":" + hex.EncodeToString(m.Sum(nil))
}

// SecretMatches reports whether value is the secret that SecretHMAC turned into mac.
// Errors: ErrNoKey (no key configured), ErrKeyMismatch (mac was made under another key, e.g. after
// a key rotation: the engine can then not prove a change), ErrInvalid (mac is malformed).
func (s *Keyring) SecretMatches(incidentID, field, value, mac string) (bool, error) {
	if s.hmacKey == nil {
		return false, fmt.Errorf("compare %s: %w", field, ErrNoKey)
	}
	parts := strings.SplitN(mac, ":", 3)
	if len(parts) != 3 || parts[0] != "h1" {
		return false, fmt.Errorf("compare %s: malformed hmac: %w", field, ErrInvalid)
	}
	if parts[1] != s.hmacKeyID {
		return false, fmt.Errorf("compare %s: hmac under key %s, have %s: %w", field, parts[1], s.hmacKeyID, ErrKeyMismatch)
	}
	return hmac.Equal([]byte(s.SecretHMAC(incidentID, field, value)), []byte(mac)), nil
}
