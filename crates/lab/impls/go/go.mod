// Not read by any build: the go command needs a go.mod to find the module root, but every build
// names one of the pinned modfiles (go build -modfile=go-v0.40.mod …); see scripts/lab-peers.
module punchr-lab/remote

go 1.26
