//go:build kadctx

package main

import (
	"context"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
)

// go-libp2p-kad-dht before v0.39 takes a context in New (the v0.40 and v0.47 eras).
func newDHT(ctx context.Context, h host.Host, opts ...dht.Option) (*dht.IpfsDHT, error) {
	return dht.New(ctx, h, opts...)
}
