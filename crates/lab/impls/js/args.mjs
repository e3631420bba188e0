// The command line of the js-libp2p lab remote: the same flags, defaults and environment
// fallbacks as `punchr-lab remote-peer` (`RemoteArgs` in crates/lab/src/peers/mod.rs), so a
// scenario can swap one implementation for the other by changing only the program. `--dial`
// (the Rust remote's test mode) is not offered here and is refused by name.
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'

/** A command-line mistake: the caller prints it with the usage and exits 2. */
export class UsageError extends Error {}

export const USAGE = `usage: remote --seed SEED --relay MULTIADDR[,MULTIADDR...]
              [--port PORT] [--bootstrap MULTIADDR[,MULTIADDR...]] [--lookup-interval DURATION]

  --seed             identity seed (env PUNCHR_LAB_REMOTE_SEED); the peer ID is
                     punchr_keyfile::from_seed(seed, 0)
  --port             TCP and QUIC port on 0.0.0.0 (env PUNCHR_LAB_REMOTE_PORT, default 4001)
  --relay            relays to hold a reservation on, each ending in /p2p/ID
                     (env PUNCHR_LAB_REMOTE_RELAY, required)
  --bootstrap        DHT servers to start from, each ending in /p2p/ID
                     (env PUNCHR_LAB_REMOTE_BOOTSTRAP)
  --lookup-interval  time between random DHT lookups, e.g. 500ms, 10s, 1m
                     (env PUNCHR_LAB_REMOTE_LOOKUP_INTERVAL, default 10s)`

const OPTIONS = {
  seed: { type: 'string' },
  port: { type: 'string' },
  relay: { type: 'string' },
  bootstrap: { type: 'string' },
  'lookup-interval': { type: 'string' },
  help: { type: 'boolean', short: 'h' }
}

/**
 * A duration as `punchr-lab` writes them (`parse_duration` in crates/lab/src/scenario.rs): a
 * number and one of us, ms, s, m (min), h; or a bare 0. Returns milliseconds.
 */
export function parseDuration (text) {
  const t = text.trim()
  if (t === '0') return 0
  const match = /^([0-9.]+)(us|µs|ms|s|m|min|h)$/.exec(t)
  if (match == null || Number.isNaN(Number(match[1]))) {
    throw new UsageError(`${JSON.stringify(text)} is not a duration (use a number and us, ms, s, m or h, e.g. 10s)`)
  }
  const scale = { us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 60e3, min: 60e3, h: 3600e3 }[match[2]]
  return Number(match[1]) * scale
}

/** A comma list of multiaddresses that must each end in /p2p/<peer id>. */
function parsePeerAddrs (flag, text) {
  return text.split(',').map(s => s.trim()).filter(s => s !== '').map(s => {
    let ma
    try {
      ma = multiaddr(s)
    } catch (err) {
      throw new UsageError(`--${flag} ${s}: not a multiaddress (${err.message})`)
    }
    if (ma.getComponents().at(-1)?.name !== 'p2p') {
      throw new UsageError(`--${flag} ${s} does not end in /p2p/<peer id>`)
    }
    return ma
  })
}

/** Parses `argv` (without node and the script) with `env` as the fallback. */
export function parseRemoteArgs (argv, env = process.env) {
  let values
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }))
  } catch (err) {
    if (/--dial/.test(err.message)) {
      throw new UsageError('--dial (side A test mode) exists only in punchr-lab remote-peer; the js remote only waits to be punched')
    }
    throw new UsageError(err.message)
  }
  if (values.help) return { help: true }
  const pick = (flag, envName) => values[flag] ?? env[envName]
  const seed = pick('seed', 'PUNCHR_LAB_REMOTE_SEED')
  if (seed == null || seed === '') throw new UsageError('--seed is required')
  const portText = pick('port', 'PUNCHR_LAB_REMOTE_PORT') ?? '4001'
  if (!/^[0-9]+$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`--port ${portText}: not a port number (0-65535)`)
  }
  const relayText = pick('relay', 'PUNCHR_LAB_REMOTE_RELAY')
  if (relayText == null) throw new UsageError('--relay is required (the relay to hold a reservation on)')
  const relay = parsePeerAddrs('relay', relayText)
  if (relay.length === 0) throw new UsageError('--relay lists no address')
  const bootstrapText = pick('bootstrap', 'PUNCHR_LAB_REMOTE_BOOTSTRAP')
  const bootstrap = bootstrapText == null ? [] : parsePeerAddrs('bootstrap', bootstrapText)
  const lookupIntervalMs = parseDuration(pick('lookup-interval', 'PUNCHR_LAB_REMOTE_LOOKUP_INTERVAL') ?? '10s')
  if (lookupIntervalMs <= 0) throw new UsageError('--lookup-interval must be longer than 0')
  return { seed, port: Number(portText), relay, bootstrap, lookupIntervalMs }
}
