package main

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The vector is pinned on the Rust side too (crates/keyfile/src/lib.rs,
// from_seed_matches_the_go_remote): both derivations must name the same peer.
func TestIdentityFromSeedMatchesRust(t *testing.T) {
	key, err := identityFromSeed("punchr-lab/relay", 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	const want = "12D3KooWSoZBmN7H5rGPDFzkdQAWy8XpYNVkTTpnwNssiFTGNXPR"
	if id.String() != want {
		t.Fatalf("seed punchr-lab/relay: got %s, want %s (punchr_keyfile::from_seed)", id, want)
	}
}
