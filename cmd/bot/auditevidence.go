package main

import (
	"github.com/compromised-responder/bot/internal/evidence"
	"github.com/compromised-responder/bot/internal/session"
)

// evidenceRecord is the bundle's fraud evidence: the incident's latest evidence read (at open,
// then at containment) as the card showed it. session.Evidence is figures, phone numbers and
// registration addresses only (evidence, no secret), so it is exported field for field.
type evidenceRecord struct {
	Type string `json:"type"` // "evidence"
	*session.Evidence
}

func newEvidenceRecord(inc session.Incident) *evidenceRecord {
	if inc.Evidence == nil {
		return nil
	}
	ev := *inc.Evidence
	ev.ReadAt = utc(ev.ReadAt)
	return &evidenceRecord{Type: "evidence", Evidence: &ev}
}

// evidenceText is the text bundle's section of it.
func (r *evidenceRecord) text() []string {
	if r == nil {
		return []string{"\nFraud evidence", "  not read"}
	}
	return []string{"\nFraud evidence (read " + ts(r.ReadAt) + ", " + r.Phase + ")", "  " + evidence.Line(*r.Evidence)}
}
