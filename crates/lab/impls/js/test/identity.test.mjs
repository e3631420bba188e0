// The js remote must have the peer ID the lab's Rust side computes for its seed
// (`{peer_id:NAME}` in a scenario), or nobody could dial it by name. The expected value is the
// one `punchr_keyfile`'s test `a_seed_gives_the_peer_id_other_implementations_check` pins.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { peerIdFromSeed, secretFromSeed } from '../identity.mjs'

test('a seed gives the peer ID punchr_keyfile::from_seed gives', async () => {
  assert.equal(await peerIdFromSeed('punchr-lab/remote-js'), '12D3KooWJMLXRQVknjpndMFKEVpcdvvp5W7sYrp2KvLBU4PX1CBF')
})

test('the secret is SHA-256 of label, seed and a big-endian index', () => {
  assert.equal(secretFromSeed('punchr-lab/remote-js').toString('hex'),
    '05c8f462bd9747a9892d90f1dfac1ac4392ea0aba9c04174ff8ff1f209d3a799')
  assert.notEqual(secretFromSeed('lab', 0).toString('hex'), secretFromSeed('lab', 1).toString('hex'))
})
