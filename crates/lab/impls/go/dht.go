//go:build !kadctx

package main

import (
	"context"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
)

// go-libp2p-kad-dht v0.39 and later take no context in New (the v0.52 era).
func newDHT(_ context.Context, h host.Host, opts ...dht.Option) (*dht.IpfsDHT, error) {
	return dht.New(h, opts...)
}
