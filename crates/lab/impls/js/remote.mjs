// A NATed js-libp2p peer for the Punchr NAT lab: the js counterpart of `punchr-lab remote-peer`
// (crates/lab/src/peers/remote.rs), with the same flags, so a scenario can put a real js-libp2p
// node where punchr clients punch. Like a js node behind NAT it listens on TCP and QUIC, holds
// a circuit relay v2 reservation on every `--relay` (advertising the `/p2p-circuit` addresses),
// serves `/libp2p/dcutr` (js registers protocol handlers for every connection, so identify
// announces it on direct connections too), and is a Kademlia *client* on /ipfs/kad/1.0.0 that
// looks up a random key every `--lookup-interval`, which is how it meets the DHT servers and
// the honeypot.
//
// It is stock js-libp2p on purpose: the lab measures what the real implementation does, not
// what it could do. The one addition is the Node 20 polyfill (polyfill.mjs, loaded with
// `node --import`). Every connection and identify event is printed to stdout as one JSON line;
// the stock DCUtR and relay logs go to stderr through js-libp2p's `DEBUG` logger (on by
// default for `libp2p:dcutr*` and `libp2p:circuit-relay:transport*`).
//
// Run with `node --import ./polyfill.mjs remote.mjs --help`.
import { randomBytes } from 'node:crypto'
import process from 'node:process'
import { enable } from '@libp2p/logger'
import { parseRemoteArgs, UsageError, USAGE } from './args.mjs'
import { keyFromSeed } from './identity.mjs'

// Before libp2p creates its loggers: the events a reader of a punch needs, unless the caller
// chose other ones with DEBUG.
enable(process.env.DEBUG ?? 'libp2p:dcutr*,libp2p:circuit-relay:transport*')

/** One JSON line on stdout. */
function log (event, fields = {}) {
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), event, ...fields }) + '\n')
}

/** What a connection is, for the log. */
function describe (conn) {
  return {
    id: conn.id,
    peer: conn.remotePeer.toString(),
    direction: conn.direction,
    address: conn.remoteAddr.toString(),
    relayed: conn.limits != null,
    multiplexer: conn.multiplexer,
    encryption: conn.encryption
  }
}

async function main () {
  let args
  try {
    args = parseRemoteArgs(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`remote: ${err.message}\n\n${USAGE}\n`)
    process.exit(2)
  }
  if (args.help) {
    process.stdout.write(USAGE + '\n')
    return
  }

  // Imported only now so that a usage error costs no libp2p start-up time.
  const [{ createLibp2p }, { tcp }, { quic }, { noise }, { yamux }, { circuitRelayTransport },
    { dcutr }, { identify, identifyPush }, { kadDHT }, { ping }] = await Promise.all([
    import('libp2p'), import('@libp2p/tcp'), import('@chainsafe/libp2p-quic'),
    import('@chainsafe/libp2p-noise'), import('@chainsafe/libp2p-yamux'),
    import('@libp2p/circuit-relay-v2'), import('@libp2p/dcutr'), import('@libp2p/identify'),
    import('@libp2p/kad-dht'), import('@libp2p/ping')
  ])

  const node = await createLibp2p({
    // Started below, once the event listeners are attached (the relay dial happens at start).
    start: false,
    privateKey: await keyFromSeed(args.seed),
    addresses: {
      listen: [
        `/ip4/0.0.0.0/tcp/${args.port}`,
        `/ip4/0.0.0.0/udp/${args.port}/quic-v1`,
        // A reservation on each configured relay: listening on `<relay>/p2p-circuit` is how
        // js-libp2p takes one on a chosen relay, and it then advertises the circuit address.
        ...args.relay.map(ma => `${ma.toString()}/p2p-circuit`)
      ]
    },
    transports: [tcp(), quic(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping(),
      dcutr: dcutr(),
      // Behind NAT a node stays a DHT client (js would switch to server mode on its own only
      // after AutoNAT found a public address; there is no AutoNAT service here, as a node that
      // knows it is private would not run one).
      dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: true })
    }
  })

  node.addEventListener('connection:open', evt => log('connection-open', describe(evt.detail)))
  node.addEventListener('connection:close', evt => log('connection-close', describe(evt.detail)))
  node.addEventListener('peer:identify', evt => {
    const r = evt.detail
    log('identified', {
      peer: r.peerId.toString(),
      agent: r.agentVersion,
      observed: r.observedAddr?.toString(),
      listen: r.listenAddrs.map(String),
      dcutr: r.protocols.includes('/libp2p/dcutr'),
      connection: r.connection.id
    })
  })
  // Our advertised addresses: exactly what DCUtR puts in a CONNECT (`getMultiaddrs()` is the
  // address manager's list) and what identify tells peers.
  let ownAddresses = ''
  node.addEventListener('self:peer:update', () => {
    const addresses = node.getMultiaddrs().map(String)
    if (addresses.join(' ') === ownAddresses) return
    ownAddresses = addresses.join(' ')
    log('own-addresses', { addresses })
  })

  await node.start()
  log('started', {
    peer_id: node.peerId.toString(),
    agent: node.services.identify.host?.agentVersion,
    listen: node.getMultiaddrs().map(String)
  })

  const bootstrapPeers = args.bootstrap.map(ma => ma.getComponents().at(-1).value)
  const dialBootstrap = () => {
    for (const ma of args.bootstrap) {
      node.dial(ma).catch(err => log('dial-failed', { address: ma.toString(), error: err.message }))
    }
  }
  dialBootstrap()

  const lookup = async () => {
    // Lost every DHT server (or never reached one): the routing table may be empty, and js
    // kad-dht pauses queries until it has a peer, so dial them again first.
    const connected = new Set(node.getPeers().map(String))
    if (!bootstrapPeers.some(id => connected.has(id))) dialBootstrap()
    const key = randomBytes(32)
    let peers = 0
    try {
      for await (const event of node.services.dht.getClosestPeers(key, { signal: AbortSignal.timeout(args.lookupIntervalMs * 3) })) {
        if (event.name === 'FINAL_PEER') peers++
      }
      log('lookup', { peers })
    } catch (err) {
      log('lookup-failed', { error: err.message })
    }
  }
  let running = false
  const timer = setInterval(() => {
    // One lookup at a time, as a slow lookup must not pile up behind a short interval.
    if (running || args.bootstrap.length === 0) return
    running = true
    lookup().finally(() => { running = false })
  }, args.lookupIntervalMs)

  const stop = async signal => {
    clearInterval(timer)
    log('stopping', { signal })
    await node.stop()
    process.exit(0)
  }
  process.on('SIGINT', () => { stop('SIGINT') })
  process.on('SIGTERM', () => { stop('SIGTERM') })
}

main().catch(err => {
  process.stderr.write(`remote: ${err.stack ?? err}\n`)
  process.exit(1)
})
