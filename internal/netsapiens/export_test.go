package netsapiens

// Waiting is how many of c's requests wait for one of its MaxInflight slots.
func (c *Client) Waiting() int { return c.sem.waiting() }
