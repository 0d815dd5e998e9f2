package nstest

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// How devices and phone (NDP) lines relate in the simulator. The real API documents
// neither case, so the simulator takes the harder one for a client each time:
//
//   - Deleting a device clears its AOR from every phone line that named it: the phone
//     keeps its MAC entry, but the line is empty.
//   - Creating a device with device-provisioning-mac-address + device-models-model links
//     it only when that MAC has no phone entry yet (a new phone is created with the device
//     on device-provisioning-line, default 1). If the phone exists, its lines are NOT
//     touched, even if the line is empty: a client that re-creates a device must re-link
//     the line itself with PUT /domains/{d}/phones.
//
// The MAC, line and model a device GET shows are read from the phone entries (whichever
// line carries the device's AOR), so they vanish while the device is unlinked.

const passwordLength = 16

// createDeviceDefaults are the documented defaults of the create body's schema, applied to
// fields the client leaves out.
func (s *Server) createDeviceDefaults(op *operation) map[string]any {
	out := map[string]any{}
	props, _ := s.spec.resolve(jsonBodySchema(op.alts[0]))["properties"].(map[string]any)
	for name, p := range props {
		ps := s.spec.resolve(p)
		if def, ok := ps["default"]; ok && name != "synchronous" {
			if ro, _ := ps["readOnly"].(bool); !ro {
				out[name] = def
			}
		}
	}
	return out
}

func (s *Server) findDevice(c *reqCtx) (Domain, map[string]any, result, bool) {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return d, nil, res, false
	}
	dev := s.st.devices[key(d.Domain, c.params["device"])]
	if dev == nil || str(dev["user"]) != str(u["user"]) {
		return d, nil, apiError(http.StatusNotFound, "Device %s not found", c.params["device"]), false
	}
	return d, dev, result{}, true
}

func (s *Server) listUserDevices(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, nonNil(s.st.userDevices(d.Domain, str(u["user"])))}
}

func (s *Server) listDomainDevices(c *reqCtx) result {
	d, res, ok := s.domainFor(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, nonNil(s.st.userDevices(d.Domain, ""))}
}

func (s *Server) getDevice(c *reqCtx) result {
	_, dev, res, ok := s.findDevice(c)
	if !ok {
		return res
	}
	return result{http.StatusOK, s.st.deviceView(dev)}
}

func (s *Server) createDevice(c *reqCtx) result {
	d, u, res, ok := s.userFor(c)
	if !ok {
		return res
	}
	b := c.body
	id := str(b["device"])
	if id == "" {
		return apiError(http.StatusBadRequest, "device must not be empty")
	}
	if s.st.devices[key(d.Domain, id)] != nil {
		return apiError(http.StatusConflict, "Device already exists")
	}
	mac := strings.ToLower(str(b[fieldMAC]))
	model := str(b[fieldModel])
	if mac != "" && model == "" {
		// The spec's description of device-provisioning-mac-address: "Must also provide a device-models-model".
		c.problems = append(c.problems, fieldMAC+" given without "+fieldModel)
		return apiError(http.StatusBadRequest, "%s requires %s", fieldMAC, fieldModel)
	}
	if mac != "" && !macRE.MatchString(mac) {
		return apiError(http.StatusBadRequest, "Invalid MAC address %s", mac)
	}
	line := 1
	if l, ok := b[fieldLine].(float64); ok {
		line = int(l)
	}
	if mac != "" && (line < 1 || line > maxLines) {
		return apiError(http.StatusBadRequest, "%s must be between 1 and %d", fieldLine, maxLines)
	}

	dev := s.createDeviceDefaults(c.op)
	for k, v := range b {
		switch k {
		case "synchronous", fieldMAC, fieldLine:
			continue
		}
		dev[k] = v
	}
	dev["domain"], dev["user"], dev["device"] = d.Domain, str(u["user"]), id
	if str(dev[fieldSIPPass]) == "" {
		dev[fieldSIPPass] = randomString(passwordLength)
	}
	dev[fieldRegState] = "unregistered" // a new device has not registered yet
	s.st.devices[key(d.Domain, id)] = dev

	if mac != "" {
		if _, exists := s.st.phoneByMAC(mac); !exists {
			p := newPhone(d, mac, model, c.now)
			p[fmt.Sprintf("device-provisioning-sip-uri-%d", line)] = aor(id, d.Domain)
			s.st.phones[key(d.Domain, mac)] = p
		}
		// An existing phone is deliberately left alone: see the comment at the top.
	}
	c.applied = true
	if str(b["synchronous"]) == "yes" {
		return result{http.StatusOK, s.st.deviceView(dev)}
	}
	return accepted()
}

func (s *Server) putDevice(c *reqCtx) result {
	_, dev, res, ok := s.findDevice(c)
	if !ok {
		return res
	}
	for k, v := range c.body {
		switch k {
		case "synchronous", fieldMAC, fieldLine:
			// Links are made through the phone entries (PUT /domains/{d}/phones).
			continue
		}
		dev[k] = v
	}
	c.applied = true
	return accepted()
}

func (s *Server) deleteDevice(c *reqCtx) result {
	d, dev, res, ok := s.findDevice(c)
	if !ok {
		return res
	}
	id := str(dev["device"])
	delete(s.st.devices, key(d.Domain, id))
	want := aor(id, d.Domain)
	for k, p := range s.st.phones {
		if !strings.HasPrefix(k, d.Domain+"\x00") {
			continue
		}
		for i := 1; i <= maxLines; i++ {
			f := fmt.Sprintf("device-provisioning-sip-uri-%d", i)
			if strings.EqualFold(str(p[f]), want) {
				p[f] = ""
				p["last-modified-datetime"] = c.now.UTC().Format(time.RFC3339)
			}
		}
	}
	c.applied = true
	return accepted()
}
