// The js remote takes `punchr-lab remote-peer`'s command line; a scenario written for one must
// run the other, and a wrong flag must stop it with a message rather than start a half-set node.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { parseDuration, parseRemoteArgs, UsageError } from '../args.mjs'

const RELAY = '/ip4/11.0.0.2/tcp/4001/p2p/12D3KooWJMLXRQVknjpndMFKEVpcdvvp5W7sYrp2KvLBU4PX1CBF'
const BOOT = '/ip4/11.0.0.3/udp/4001/quic-v1/p2p/12D3KooWHbvtMT2D3MV2t5JTM1EnVa83ZPayubrVxg6PVgRJ3u9S'

test('flags, comma lists and defaults match remote-peer', () => {
  const a = parseRemoteArgs(['--seed', 's', '--relay', RELAY, '--bootstrap', `${RELAY},${BOOT}`], {})
  assert.equal(a.seed, 's')
  assert.equal(a.port, 4001)
  assert.equal(a.lookupIntervalMs, 10_000)
  assert.deepEqual(a.relay.map(String), [RELAY])
  assert.deepEqual(a.bootstrap.map(String), [RELAY, BOOT])
  const b = parseRemoteArgs(['--seed=s', `--relay=${RELAY}`, '--port', '4100', '--lookup-interval', '1.5s'], {})
  assert.equal(b.port, 4100)
  assert.equal(b.lookupIntervalMs, 1500)
  assert.deepEqual(b.bootstrap, [])
})

test('environment variables stand in for missing flags', () => {
  const a = parseRemoteArgs(['--port', '5000'], {
    PUNCHR_LAB_REMOTE_SEED: 'e', PUNCHR_LAB_REMOTE_RELAY: RELAY, PUNCHR_LAB_REMOTE_PORT: '6000'
  })
  assert.equal(a.seed, 'e')
  assert.equal(a.port, 5000)
})

test('durations are read as punchr-lab reads them', () => {
  assert.equal(parseDuration('500ms'), 500)
  assert.equal(parseDuration('2m'), 120_000)
  assert.equal(parseDuration('250us'), 0.25)
  assert.equal(parseDuration('0'), 0)
  assert.throws(() => parseDuration('10'), UsageError)
  assert.throws(() => parseDuration('3 weeks'), UsageError)
})

test('mistakes are usage errors naming the flag', () => {
  const bad = [
    [['--relay', RELAY], /--seed is required/],
    [['--seed', 's'], /--relay is required/],
    [['--seed', 's', '--relay', '/ip4/11.0.0.2/tcp/4001'], /does not end in \/p2p/],
    [['--seed', 's', '--relay', 'nonsense'], /not a multiaddress/],
    [['--seed', 's', '--relay', RELAY, '--port', '70000'], /--port 70000/],
    [['--seed', 's', '--relay', RELAY, '--lookup-interval', '10'], /not a duration/],
    [['--seed', 's', '--relay', RELAY, '--dial', RELAY], /--dial .*only in punchr-lab remote-peer/],
    [['--seed', 's', '--relay', RELAY, '--frobnicate'], /frobnicate/]
  ]
  for (const [argv, message] of bad) {
    assert.throws(() => parseRemoteArgs(argv, {}), err => err instanceof UsageError && message.test(err.message), argv.join(' '))
  }
})

test('the program exits 2 on a bad flag, before starting libp2p', () => {
  const script = fileURLToPath(new URL('../remote.mjs', import.meta.url))
  const run = spawnSync(process.execPath, [script, '--seed', 's', '--relay', RELAY, '--port', 'x'], { encoding: 'utf8' })
  assert.equal(run.status, 2, run.stderr)
  assert.match(run.stderr, /--port x: not a port number/)
  assert.match(run.stderr, /usage: remote/)
})
