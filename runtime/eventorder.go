package runtime

import "time"

// A container's events go out in the order they happened, as far as a
// watcher can tell: an order publishes its own event at once, and an event
// that happens on its own while a start or a checkpoint runs waits for that
// order's event (see Container.evMu).

// publish sends an event of this container now (from an order).
func (c *Container) publish(e Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.send(e)
}

// happened publishes an event that happened on its own, unless a start is
// in flight: then it waits for the start's own event (see evMu).
func (c *Container) happened(e Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.holding {
		c.held = append(c.held, e)
		return
	}
	c.send(e)
}

// send stamps e and hands it to the bus. evMu must be held.
func (c *Container) send(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.ID = c.id
	c.times.event.advance(e.Time)
	c.bus.publish(e)
}

// holdEvents holds back events that happen on their own until the
// returned release is called.
func (c *Container) holdEvents() (release func()) {
	c.evMu.Lock()
	c.holding = true
	c.evMu.Unlock()
	return func() {
		c.evMu.Lock()
		defer c.evMu.Unlock()
		c.holding = false
		for _, e := range c.held {
			c.send(e)
		}
		c.held = nil
	}
}
