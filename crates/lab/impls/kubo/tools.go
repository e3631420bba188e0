//go:build tools

// Keeps kubo's daemon package (what github.com/ipfs/kubo/cmd/ipfs runs) in this module's graph,
// so go.mod and go.sum pin every module the `ipfs` binary is built from: a main package cannot be
// imported, its one non-main dependency can.
package main

import _ "github.com/ipfs/kubo/cmd/ipfs/kubo"
