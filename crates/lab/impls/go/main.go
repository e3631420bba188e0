// Command remote is the lab's go-libp2p peer: a NATed node shaped like a kubo node in the field
// (TCP and QUIC-v1 with port reuse, noise/TLS and yamux, identify, a circuit relay v2 client with
// a static reservation, reachability forced private, the stock hole punching service, and a
// Kademlia client doing random lookups), built against one pinned go-libp2p release per DCUtR
// role era (go-v0.40.mod, go-v0.47.mod, go-v0.52.mod; see scripts/lab-peers).
//
// Its flags are those of `punchr-lab remote-peer` (crates/lab/src/peers/mod.rs, RemoteArgs), so
// a scenario's command template can name either program. Every hole punching tracer event and
// every connection to or from a peer is one JSON line on stdout: that is the record of which
// role this era takes on each attempt. With --dial it plays DCUtR side A once instead and prints
// one JSON line shaped like the Rust remote's DialOutcome.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// args mirrors punchr-lab's RemoteArgs, flag names, defaults and environment variables alike.
type args struct {
	seed           string
	port           int
	relays         []peer.AddrInfo
	relayAddrs     []string
	bootstrap      []peer.AddrInfo
	lookupInterval time.Duration
	dial           ma.Multiaddr
	dialTimeout    time.Duration
}

func main() {
	a, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if a.dial != nil {
		// Stdout carries the one outcome line; the event lines go to stderr (the lab's log).
		out.enc = json.NewEncoder(os.Stderr)
		err = runDial(ctx, a)
	} else {
		err = runRemote(ctx, a)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv("PUNCHR_LAB_REMOTE_" + name); ok {
		return v
	}
	return fallback
}

func parseArgs(argv []string) (args, error) {
	fs := flag.NewFlagSet("remote", flag.ContinueOnError)
	seed := fs.String("seed", env("SEED", ""), "identity seed (punchr_keyfile::from_seed, index 0)")
	port := fs.String("port", env("PORT", "4001"), "TCP and QUIC port on 0.0.0.0; dials reuse it")
	relay := fs.String("relay", env("RELAY", ""), "relays to reserve on (multiaddresses ending in /p2p/ID), comma-separated")
	bootstrap := fs.String("bootstrap", env("BOOTSTRAP", ""), "DHT servers to bootstrap from, comma-separated")
	lookup := fs.String("lookup-interval", env("LOOKUP_INTERVAL", "10s"), "time between random DHT lookups")
	dial := fs.String("dial", env("DIAL", ""), "play DCUtR side A: dial this /p2p-circuit address, print one JSON line, exit")
	dialTimeout := fs.String("dial-timeout", env("DIAL_TIMEOUT", "20s"), "how long --dial waits for a direct connection")
	if err := fs.Parse(argv); err != nil {
		return args{}, err
	}
	var a args
	var err error
	if *seed == "" {
		return a, errors.New("--seed is required")
	}
	a.seed = *seed
	if a.port, err = strconv.Atoi(*port); err != nil || a.port < 0 || a.port > 65535 {
		return a, fmt.Errorf("--port %q: not a port number", *port)
	}
	if *relay == "" {
		return a, errors.New("--relay is required (at least one /ip4/…/tcp/…/p2p/ID address)")
	}
	if a.relays, a.relayAddrs, err = addrInfos("--relay", *relay); err != nil {
		return a, err
	}
	if a.bootstrap, _, err = addrInfos("--bootstrap", *bootstrap); err != nil {
		return a, err
	}
	if a.lookupInterval, err = time.ParseDuration(*lookup); err != nil || a.lookupInterval <= 0 {
		return a, fmt.Errorf("--lookup-interval %q: give a duration such as 10s", *lookup)
	}
	if a.dialTimeout, err = time.ParseDuration(*dialTimeout); err != nil || a.dialTimeout <= 0 {
		return a, fmt.Errorf("--dial-timeout %q: give a duration such as 20s", *dialTimeout)
	}
	if *dial != "" {
		if a.dial, err = ma.NewMultiaddr(*dial); err != nil {
			return a, fmt.Errorf("--dial %q: %w", *dial, err)
		}
		if _, err := a.dial.ValueForProtocol(ma.P_CIRCUIT); err != nil {
			return a, fmt.Errorf("--dial %s: not a /p2p-circuit address", a.dial)
		}
	}
	return a, nil
}

// addrInfos parses a comma-separated list of multiaddresses ending in /p2p/ID, keeping each
// address as given too (a peer listed over TCP and QUIC is dialed over both).
func addrInfos(flagName, list string) ([]peer.AddrInfo, []string, error) {
	var infos []peer.AddrInfo
	var addrs []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		info, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %q: %w (want a multiaddress ending in /p2p/<peer id>)", flagName, s, err)
		}
		infos = append(infos, *info)
		addrs = append(addrs, s)
	}
	return infos, addrs, nil
}

// libp2pVersion is the go-libp2p module version linked in, from the build information, so the
// agent version cannot disagree with the modfile the binary was built from.
func libp2pVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/libp2p/go-libp2p" {
				return strings.TrimPrefix(dep.Version, "v")
			}
		}
	}
	return "unknown"
}

// out writes one JSON object per line to stdout; tracer callbacks come from many goroutines.
var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func logLine(kind string, fields map[string]any) {
	fields["event"] = kind
	fields["time_unix_ns"] = time.Now().UnixNano()
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(fields)
}

// tracer logs the hole punching service's events. HolePunchFinished (a metrics callback) is the
// only one that names the side ("initiator" = B, which opened the DCUtR stream; "receiver" = A).
type tracer struct{ onEvent func(*holepunch.Event) }

func (t *tracer) Trace(e *holepunch.Event) {
	logLine("holepunch", map[string]any{"type": e.Type, "peer": e.Remote.String(), "detail": e.Evt})
	if t.onEvent != nil {
		t.onEvent(e)
	}
}

func (t *tracer) HolePunchFinished(side string, attempts int, theirAddrs, ourAddrs []ma.Multiaddr, direct network.ConnMultiaddrs) {
	fields := map[string]any{"side": side, "attempts": attempts, "their_addrs": strs(theirAddrs), "our_addrs": strs(ourAddrs)}
	if direct != nil {
		fields["direct_local"] = direct.LocalMultiaddr().String()
		fields["direct_remote"] = direct.RemoteMultiaddr().String()
	}
	logLine("holepunch_finished", fields)
}

func (t *tracer) DirectDialFinished(bool) {}

func strs(addrs []ma.Multiaddr) []string {
	s := make([]string, 0, len(addrs))
	for _, a := range addrs {
		s = append(s, a.String())
	}
	return s
}

// connLogger logs every connection with its direction. The direction is the swarm's (who
// dialed), not the handshake role: a hole punch dial taken as server (TCP upgraded as the
// security responder, QUIC waiting for the other side's Initial) is still "Outbound" when its
// own dial produced the connection. The roles are in the code (holePunchConnect's isClient);
// the tracer's lines say which side (initiator, receiver) and attempt each punch was.
type connLogger struct{ onConnected func(network.Conn) }

func (c *connLogger) Connected(_ network.Network, conn network.Conn) {
	logLine("connected", map[string]any{
		"peer": conn.RemotePeer().String(), "remote": conn.RemoteMultiaddr().String(),
		"local": conn.LocalMultiaddr().String(), "direction": conn.Stat().Direction.String(),
		"relayed": isRelayed(conn.RemoteMultiaddr()),
	})
	if c.onConnected != nil {
		c.onConnected(conn)
	}
}
func (c *connLogger) Disconnected(_ network.Network, conn network.Conn) {
	logLine("disconnected", map[string]any{"peer": conn.RemotePeer().String(), "remote": conn.RemoteMultiaddr().String()})
}
func (c *connLogger) Listen(network.Network, ma.Multiaddr)      {}
func (c *connLogger) ListenClose(network.Network, ma.Multiaddr) {}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// newHost builds the node both modes share. reserve says whether to hold reservations on the
// relays (the NATed remote) or only to dial through them (side A).
func newHost(a args, t *tracer, reserve bool) (host.Host, error) {
	key, err := identityFromSeed(a.seed, 0)
	if err != nil {
		return nil, fmt.Errorf("deriving the identity from --seed: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(
			fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", a.port),
			fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", a.port),
		),
		// TCP and QUIC only (the transports the lab punches); both reuse the listening port
		// for dials by default. Security (TLS, noise) and muxer (yamux) are the stock ones.
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		libp2p.UserAgent(fmt.Sprintf("go-libp2p/%s (punchr-lab remote)", libp2pVersion())),
		libp2p.EnableRelay(),
		// Behind NAT, as the lab's routers make it; skipping AutoNAT also keeps the peer from
		// waiting for servers the lab does not run.
		libp2p.ForceReachabilityPrivate(),
		libp2p.EnableHolePunching(holepunch.WithMetricsAndEventTracer(t, t)),
	}
	if reserve {
		// Reserve on every static relay at once: autorelay's defaults (four candidates, a
		// three-minute boot delay) are for a random relay set found in the DHT.
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(a.relays,
			autorelay.WithNumRelays(len(a.relays)),
			autorelay.WithMinCandidates(len(a.relays)),
			autorelay.WithBootDelay(0),
			autorelay.WithBackoff(10*time.Second),
		))
	}
	return libp2p.New(opts...)
}

// logAddressChanges logs each new address of the host; a relay reservation shows as a
// "relay_address" line (readiness probes and tests wait for it).
func logAddressChanges(ctx context.Context, h host.Host) error {
	sub, err := h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		return fmt.Errorf("subscribing to address updates: %w", err)
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-sub.Out():
				for _, a := range e.(event.EvtLocalAddressesUpdated).Current {
					if a.Action != event.Added {
						continue
					}
					kind := "address"
					if isRelayed(a.Address) {
						kind = "relay_address"
					}
					logLine(kind, map[string]any{"addr": a.Address.String()})
				}
			}
		}
	}()
	return nil
}

// runRemote is the NATed peer: reserve, announce, look up, wait to be punched.
func runRemote(ctx context.Context, a args) error {
	t := &tracer{}
	h, err := newHost(a, t, true)
	if err != nil {
		return err
	}
	defer h.Close()
	h.Network().Notify(&connLogger{})
	if err := logAddressChanges(ctx, h); err != nil {
		return err
	}
	logLine("running", map[string]any{"peer_id": h.ID().String(), "agent": fmt.Sprintf("go-libp2p/%s (punchr-lab remote)", libp2pVersion())})

	// Side B opens /libp2p/dcutr on inbound relayed connections; the service registers the
	// protocol host-wide, so identify announces it on every connection, as kubo's does.
	kad, err := newDHT(ctx, h, dht.Mode(dht.ModeClient), dht.BootstrapPeers(a.bootstrap...))
	if err != nil {
		return fmt.Errorf("starting the Kademlia client: %w", err)
	}
	defer kad.Close()
	for _, info := range a.bootstrap {
		// Each address on its own, so that a peer listed over TCP and QUIC observes us over
		// both and our CONNECT can offer a QUIC address (as the Rust remote does).
		for _, addr := range info.Addrs {
			go func(info peer.AddrInfo, addr ma.Multiaddr) {
				c, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if err := h.Connect(c, peer.AddrInfo{ID: info.ID, Addrs: []ma.Multiaddr{addr}}); err != nil {
					logLine("bootstrap_failed", map[string]any{"addr": addr.String(), "error": err.Error()})
				}
			}(info, addr)
		}
	}
	ticker := time.NewTicker(a.lookupInterval)
	defer ticker.Stop()
	for {
		if len(a.bootstrap) > 0 {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			c, cancel := context.WithTimeout(ctx, a.lookupInterval)
			peers, err := kad.GetClosestPeers(c, string(key))
			cancel()
			fields := map[string]any{"found": len(peers), "addrs": strs(h.Addrs())}
			if err != nil {
				fields["error"] = err.Error()
			}
			logLine("lookup", fields)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
}
