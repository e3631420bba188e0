// Command remote runs a real kubo node (the `ipfs` binary built beside it from this module's
// pins, kubo v0.43.1) as one of the lab's NATed remotes. It takes the flags of `punchr-lab
// remote-peer` (crates/lab/src/peers/mod.rs, RemoteArgs), so scenario templates can name it
// like any other remote, and turns them into a lab config:
//
//   - a fresh IPFS_PATH under --data-dir, `ipfs init`, the identity derived from --seed (as
//     punchr_keyfile::from_seed does, so {peer_id:NAME} names this node);
//   - Bootstrap = --bootstrap, static relays = --relay, reachability forced private (so it takes
//     a reservation, as a node behind NAT does), relay client and hole punching on;
//   - nothing that reaches outside the lab: AutoConf, delegated HTTP routers, AutoTLS, HTTP
//     retrieval, telemetry, mDNS, UPnP and the gateway are off;
//   - the swarm on TCP and QUIC-v1 at 0.0.0.0:--port.
//
// Then it runs `ipfs daemon` and, every --lookup-interval, a walk toward a random key through
// the daemon's API (`dht/query`, the closest peers to it), standing in for the content lookups
// that make field nodes walk the DHT and meet the honeypot. (`routing/findpeer` does not walk:
// with this config it answered "not found" at once and queried no peer, so kubo never met the
// honeypot.) The daemon's hole punching log (p2p-holepunch at debug) goes to stderr.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func env(name, fallback string) string {
	if v, ok := os.LookupEnv("PUNCHR_LAB_REMOTE_" + name); ok {
		return v
	}
	return fallback
}

func main() {
	if err := run(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "kubo remote:", err)
		os.Exit(1)
	}
}

func run() error {
	fs := flag.NewFlagSet("remote", flag.ContinueOnError)
	seed := fs.String("seed", env("SEED", ""), "identity seed (punchr_keyfile::from_seed, index 0)")
	port := fs.String("port", env("PORT", "4001"), "TCP and QUIC port on 0.0.0.0")
	relay := fs.String("relay", env("RELAY", ""), "static relays (multiaddresses ending in /p2p/ID), comma-separated")
	bootstrap := fs.String("bootstrap", env("BOOTSTRAP", ""), "DHT servers to bootstrap from, comma-separated")
	lookup := fs.String("lookup-interval", env("LOOKUP_INTERVAL", "10s"), "time between random DHT lookups")
	dial := fs.String("dial", env("DIAL", ""), "not supported by kubo: use the go-v0.52 remote's --dial")
	_ = fs.String("dial-timeout", env("DIAL_TIMEOUT", "20s"), "not supported by kubo")
	dataDir := fs.String("data-dir", env("KUBO_DATA_DIR", ""), "where the fresh IPFS_PATH goes (default: a new directory under $TMPDIR)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return err
	}
	if *dial != "" {
		return errors.New("--dial: kubo has no side-A test mode; use the go-v0.52 remote's --dial, which runs the same go-libp2p hole punching code")
	}
	if *seed == "" || *relay == "" {
		return errors.New("--seed and --relay are required")
	}
	p, err := strconv.Atoi(*port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("--port %q: not a port number", *port)
	}
	interval, err := time.ParseDuration(*lookup)
	if err != nil || interval <= 0 {
		return fmt.Errorf("--lookup-interval %q: give a duration such as 10s", *lookup)
	}
	relays, err := addrList("--relay", *relay)
	if err != nil {
		return err
	}
	boots, err := addrList("--bootstrap", *bootstrap)
	if err != nil {
		return err
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	ipfs := filepath.Join(filepath.Dir(self), "ipfs")
	repo := *dataDir
	if repo == "" {
		if repo, err = os.MkdirTemp("", "punchr-lab-kubo-"); err != nil {
			return err
		}
	} else {
		// A fresh repository every start: nothing of an earlier run (peers, reservations) leaks in.
		if err := os.RemoveAll(repo); err != nil {
			return err
		}
		if err := os.MkdirAll(repo, 0o700); err != nil {
			return err
		}
	}
	repo = filepath.Join(repo, "ipfs")
	apiPort, err := freePort()
	if err != nil {
		return err
	}
	daemonEnv := append(os.Environ(),
		"IPFS_PATH="+repo,
		"IPFS_TELEMETRY=off",
		"GOLOG_LOG_LEVEL=error,p2p-holepunch=debug",
		"GOLOG_LOG_FMT=json",
	)

	init := exec.Command(ipfs, "init", "--empty-repo")
	init.Env, init.Stdout, init.Stderr = daemonEnv, os.Stderr, os.Stderr
	if err := init.Run(); err != nil {
		return fmt.Errorf("ipfs init in %s: %w", repo, err)
	}
	if err := labConfig(filepath.Join(repo, "config"), *seed, p, apiPort, relays, boots); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	daemon := exec.Command(ipfs, "daemon", "--init=false", "--migrate=false")
	daemon.Env, daemon.Stdout, daemon.Stderr = daemonEnv, os.Stdout, os.Stderr
	if err := daemon.Start(); err != nil {
		return fmt.Errorf("starting ipfs daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- daemon.Wait() }()

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v0/dht/query?arg=", apiPort)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("ipfs daemon exited: %v", err)
		case <-ctx.Done():
			_ = daemon.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = daemon.Process.Kill()
			}
			return nil
		case <-ticker.C:
			if len(boots) > 0 {
				go walkToRandomKey(ctx, api, interval)
			}
		}
	}
}

func addrList(flagName, list string) ([]string, error) {
	var addrs []string
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, err := peer.AddrInfoFromString(s); err != nil {
			return nil, fmt.Errorf("%s %q: %w (want a multiaddress ending in /p2p/<peer id>)", flagName, s, err)
		}
		addrs = append(addrs, s)
	}
	return addrs, nil
}

// freePort picks a loopback port for the daemon's API (several lab peers may share a namespace
// in tests, so the usual 5001 could be taken).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// walkToRandomKey walks the DHT toward a random peer ID and reads the answer to its end (the
// walk, not the answer, is the point).
func walkToRandomKey(ctx context.Context, api string, timeout time.Duration) {
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, api+id.String(), nil)
	if err != nil {
		return
	}
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// labConfig rewrites the config `ipfs init` wrote. Keys are set on the JSON document, not
// through kubo's config package, so the launcher stays independent of kubo's Go API.
func labConfig(path, seed string, port, apiPort int, relays, boots []string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	key, err := identityFromSeed(seed, 0)
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return err
	}
	keyBytes, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	set := func(dotted string, v any) {
		m := cfg
		parts := strings.Split(dotted, ".")
		for _, k := range parts[:len(parts)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[parts[len(parts)-1]] = v
	}
	set("Identity.PeerID", id.String())
	set("Identity.PrivKey", base64.StdEncoding.EncodeToString(keyBytes))
	set("Bootstrap", nonNil(boots))
	set("Addresses.Swarm", []string{
		fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port),
		fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", port),
	})
	set("Addresses.API", []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", apiPort)})
	set("Addresses.Gateway", []string{})
	set("Swarm.RelayClient.Enabled", true)
	set("Swarm.RelayClient.StaticRelays", relays)
	set("Swarm.RelayService.Enabled", false)
	set("Swarm.EnableHolePunching", true)
	set("Swarm.DisableNatPortMap", true)
	// TCP and QUIC only: the transports the lab punches (field kubo also listens for
	// WebTransport and WebRTC-direct on its QUIC port and for websockets).
	set("Swarm.Transports.Network.Websocket", false)
	set("Swarm.Transports.Network.WebTransport", false)
	set("Swarm.Transports.Network.WebRTCDirect", false)
	set("Internal.Libp2pForceReachability", "private")
	// Behind NAT kubo ends up a DHT client; "dhtclient" also drops the delegated HTTP
	// routers of the default "auto" routing, which live on the internet.
	set("Routing.Type", "dhtclient")
	set("Routing.DelegatedRouters", []string{})
	set("Ipns.DelegatedPublishers", []string{})
	set("AutoConf.Enabled", false)
	// The default resolvers are the "auto" placeholder, which only AutoConf fills in.
	set("DNS.Resolvers", map[string]string{})
	set("AutoTLS.Enabled", false)
	set("HTTPRetrieval.Enabled", false)
	set("Discovery.MDNS.Enabled", false)
	set("Provide.Enabled", false)
	set("Plugins.Plugins.telemetry.Config.Mode", "off")
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
