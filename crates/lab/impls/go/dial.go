package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// dialOutcome is what --dial prints: the fields and meanings of the Rust remote's DialOutcome
// (crates/lab/src/peers/remote.rs), so the lab's tests and benches read either.
type dialOutcome struct {
	// "direct" (a direct connection to the target exists), "relayed-only" or "no-relay".
	Result string `json:"result"`
	// Our address as the relay saw it (what the holepunch service offers in CONNECT).
	Observed *string `json:"observed"`
	// From the circuit dial to the relayed connection.
	RelayedMs *float64 `json:"relayed_ms"`
	// From the relayed connection to the direct one.
	DirectMs *float64 `json:"direct_ms"`
	// The first ping's RTT over the relayed connection.
	RelayedRttMs *float64 `json:"relayed_rtt_ms"`
	// The direct connection's remote address.
	DirectAddress *string `json:"direct_address"`
	// Hole punching events seen here.
	Dcutr []string `json:"dcutr"`
	// Dial and hole punch errors toward the target.
	Errors []string `json:"errors"`
}

// dialState is filled from the notifiee and tracer goroutines.
type dialState struct {
	mu        sync.Mutex
	target    peer.ID
	relayedAt time.Time
	directAt  time.Time
	direct    string
	rtt       time.Duration
	dcutr     []string
	errors    []string
	done      chan struct{}
	closeOnce sync.Once
}

func (s *dialState) onConnected(c network.Conn) {
	if c.RemotePeer() != s.target {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if isRelayed(c.RemoteMultiaddr()) {
		if s.relayedAt.IsZero() {
			s.relayedAt = time.Now()
		}
	} else if s.directAt.IsZero() {
		s.directAt = time.Now()
		s.direct = c.RemoteMultiaddr().String()
	}
	s.checkDone()
}

func (s *dialState) onEvent(e *holepunch.Event) {
	if e.Remote != s.target {
		return
	}
	detail, _ := json.Marshal(e.Evt)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dcutr = append(s.dcutr, fmt.Sprintf("%s %s", e.Type, detail))
	switch evt := e.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		if evt.Error != "" {
			s.errors = append(s.errors, evt.Error)
		}
	case *holepunch.DirectDialEvt:
		if evt.Error != "" {
			s.errors = append(s.errors, evt.Error)
		}
	case *holepunch.ProtocolErrorEvt:
		s.errors = append(s.errors, evt.Error)
	}
}

// checkDone must be called with mu held: complete once there is a direct connection and the
// relayed RTT, as the Rust dialer waits for both.
func (s *dialState) checkDone() {
	if !s.directAt.IsZero() && s.rtt > 0 {
		s.closeOnce.Do(func() { close(s.done) })
	}
}

// runDial is DCUtR side A once: connect to the relays, learn our observed address from
// identify, dial the target through the relay, wait for the target's hole punch.
func runDial(ctx context.Context, a args) error {
	target, err := peer.AddrInfoFromP2pAddr(a.dial)
	if err != nil {
		return fmt.Errorf("--dial %s: %w", a.dial, err)
	}
	state := &dialState{target: target.ID, done: make(chan struct{})}
	h, err := newHost(a, &tracer{onEvent: state.onEvent}, false)
	if err != nil {
		return err
	}
	defer h.Close()
	h.Network().Notify(&connLogger{onConnected: state.onConnected})
	identified, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		return fmt.Errorf("subscribing to identify events: %w", err)
	}
	defer identified.Close()
	ctx, cancel := context.WithTimeout(ctx, a.dialTimeout)
	defer cancel()

	isRelay := map[peer.ID]bool{}
	for _, r := range a.relays {
		isRelay[r.ID] = true
		if err := h.Connect(ctx, r); err != nil {
			state.errors = append(state.errors, fmt.Sprintf("connecting to relay %s: %v", r.ID, err))
		}
	}
	var observed *string
	for observed == nil {
		select {
		case e := <-identified.Out():
			id := e.(event.EvtPeerIdentificationCompleted)
			if isRelay[id.Peer] && id.ObservedAddr != nil {
				s := id.ObservedAddr.String()
				observed = &s
			}
		case <-ctx.Done():
			return printOutcome(state, observed, time.Time{})
		}
	}

	// The hole punching service answers DCUtR streams only once it knows a public address of
	// ours (from the relay's identify); dialing before that would make B's stream fail.
	for !speaksDcutr(h) {
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			state.errors = append(state.errors, "the hole punching service never started: no public observed address")
			return printOutcome(state, observed, time.Time{})
		}
	}

	dialedAt := time.Now()
	if err := h.Connect(network.WithAllowLimitedConn(ctx, "dcutr side A"), *target); err != nil {
		state.mu.Lock()
		state.errors = append(state.errors, fmt.Sprintf("dialing %s: %v", a.dial, err))
		state.mu.Unlock()
		return printOutcome(state, observed, dialedAt)
	}
	go func() {
		// The first ping goes over the relayed connection: the direct one needs the target's
		// CONNECT first, a round trip later at least.
		for r := range ping.Ping(network.WithAllowLimitedConn(ctx, "relayed rtt"), h, target.ID) {
			state.mu.Lock()
			if r.Error == nil && state.rtt == 0 {
				state.rtt = r.RTT
				state.checkDone()
			}
			state.mu.Unlock()
			if r.Error == nil {
				return
			}
		}
	}()
	select {
	case <-state.done:
	case <-ctx.Done():
	}
	return printOutcome(state, observed, dialedAt)
}

func speaksDcutr(h host.Host) bool {
	for _, p := range h.Mux().Protocols() {
		if p == holepunch.Protocol {
			return true
		}
	}
	return false
}

func printOutcome(s *dialState, observed *string, dialedAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := func(from, to time.Time) *float64 {
		if from.IsZero() || to.IsZero() {
			return nil
		}
		v := float64(to.Sub(from).Nanoseconds()) / 1e6
		return &v
	}
	o := dialOutcome{
		Result:    "no-relay",
		Observed:  observed,
		RelayedMs: ms(dialedAt, s.relayedAt),
		DirectMs:  ms(s.relayedAt, s.directAt),
		Dcutr:     append([]string{}, s.dcutr...),
		Errors:    append([]string{}, s.errors...),
	}
	switch {
	case !s.directAt.IsZero():
		o.Result = "direct"
		o.DirectAddress = &s.direct
	case !s.relayedAt.IsZero():
		o.Result = "relayed-only"
	}
	if s.rtt > 0 {
		v := float64(s.rtt.Nanoseconds()) / 1e6
		o.RelayedRttMs = &v
	}
	out.Lock()
	defer out.Unlock()
	// The outcome goes to stdout alone; the per-event lines of --dial mode go to stderr.
	return json.NewEncoder(os.Stdout).Encode(o)
}
