package nstest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// revokeJWT records the uid (user@domain); the simulator issues no JWTs, so there is
// nothing else to revoke.
func (s *Server) revokeJWT(c *reqCtx) result {
	s.st.revoked = append(s.st.revoked, c.params["uid"])
	c.applied = true
	return accepted()
}

// sendEmail answers 200, the only status the spec lists for SendEmail.
func (s *Server) sendEmail(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	to := str(u["email-address"])
	if to == "" {
		return apiError(http.StatusBadRequest, "User %s has no email address", str(u["user"]))
	}
	s.st.emails = append(s.st.emails, SentEmail{
		Domain: d.Domain, User: str(u["user"]), Template: str(c.body["template"]),
		Subject: str(c.body["subject"]), To: to, At: c.now,
	})
	c.applied = true
	c.secret = true // the message it sends (a reset link, a temporary password) is what the PBX's detailed log would write
	return result{http.StatusOK, map[string]any{"code": http.StatusOK, "message": "Email sent"}}
}

func (s *Server) listCalls(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, nonNil(s.st.userCalls(d.Domain, str(u["user"])))}
}

// endCall answers 200: the spec lists only 200 for this DELETE (most writes are 202).
func (s *Server) endCall(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	id := c.params["call_id"]
	for i, call := range s.st.calls {
		if str(call["call-orig-call-id"]) == id && strings.EqualFold(str(call["call-orig-domain"]), d.Domain) &&
			str(call["call-orig-user"]) == str(u["user"]) {
			s.st.calls = append(s.st.calls[:i:i], s.st.calls[i+1:]...)
			c.applied = true
			return result{http.StatusOK, map[string]any{"code": http.StatusOK, "message": "OK"}}
		}
	}
	return apiError(http.StatusNotFound, "Call %s not found", id)
}

// listCDRs returns the user's call records whose time_start lies in [datetime-start,
// datetime-end] (both required by the spec), oldest first, filtered by type if given.
func (s *Server) listCDRs(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	from, err1 := time.Parse(time.RFC3339, c.query.Get("datetime-start"))
	to, err2 := time.Parse(time.RFC3339, c.query.Get("datetime-end"))
	if err1 != nil || err2 != nil {
		return apiError(http.StatusBadRequest, "datetime-start and datetime-end must be RFC 3339 date-times")
	}
	uid := str(u["user"]) + "@" + d.Domain
	typ := c.query.Get("type")
	var out []map[string]any
	for _, r := range s.st.cdrs {
		ts, _ := r["time_start"].(float64)
		start := time.Unix(int64(ts), 0)
		if !strings.EqualFold(str(r["uid"]), uid) || start.Before(from) || start.After(to) {
			continue
		}
		if typ != "" && fmt.Sprint(r["type"]) != typ {
			continue
		}
		out = append(out, cloneJSON(r))
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, _ := out[i]["time_start"].(float64)
		b, _ := out[j]["time_start"].(float64)
		return a < b
	})
	return result{http.StatusOK, nonNil(page(c, out))}
}
