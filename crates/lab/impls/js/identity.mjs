// The lab's deterministic identities, as `punchr_keyfile::from_seed(seed, 0)` derives them
// (crates/keyfile/src/lib.rs): the Ed25519 secret is SHA-256 over a fixed label, the seed's
// UTF-8 bytes and the host index as a big-endian u32. Scenarios name peers by the peer IDs the
// Rust side computes (`{peer_id:NAME}`), so this must agree with it byte for byte.
import { createHash } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const LABEL = Buffer.from('punchr identity seed v1\0', 'utf8')

/** The 32-byte Ed25519 secret for `seed` (a string) and host `index`. */
export function secretFromSeed (seed, index = 0) {
  const be = Buffer.alloc(4)
  be.writeUInt32BE(index)
  return createHash('sha256').update(LABEL).update(Buffer.from(seed, 'utf8')).update(be).digest()
}

/** The libp2p private key for `seed` (index 0 unless told). */
export async function keyFromSeed (seed, index = 0) {
  return generateKeyPairFromSeed('Ed25519', new Uint8Array(secretFromSeed(seed, index)))
}

/** The peer ID string for `seed`. */
export async function peerIdFromSeed (seed, index = 0) {
  return peerIdFromPrivateKey(await keyFromSeed(seed, index)).toString()
}
