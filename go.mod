module github.com/ctrfs/ctrfs

go 1.26.8

require (
	bazil.org/fuse v0.0.0-20230120002735-62a210ff1fd5
	github.com/containerd/go-runc v1.2.1
	github.com/opencontainers/runtime-spec v1.2.1
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/sys v0.50.0
)

require github.com/containerd/console v1.0.5 // indirect
