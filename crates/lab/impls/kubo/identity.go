package main

// A copy of crates/lab/impls/go/identity.go: each implementation directory is its own module.
import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// identityFromSeed derives the Ed25519 identity exactly as punchr_keyfile::from_seed(seed, index)
// does (crates/keyfile/src/lib.rs), so the lab's {peer_id:NAME} placeholder names Go peers too:
// the secret is SHA-256("punchr identity seed v1\0" || seed || u32be(index)).
func identityFromSeed(seed string, index uint32) (crypto.PrivKey, error) {
	h := sha256.New()
	h.Write([]byte("punchr identity seed v1\x00"))
	h.Write([]byte(seed))
	var idx [4]byte
	binary.BigEndian.PutUint32(idx[:], index)
	h.Write(idx[:])
	secret := ed25519.NewKeyFromSeed(h.Sum(nil))
	return crypto.UnmarshalEd25519PrivateKey(secret)
}
