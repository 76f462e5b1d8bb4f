module github.com/ctrfs/ctrfs/tools/fusefloor

go 1.26.8

require (
	bazil.org/fuse v0.0.0-20230120002735-62a210ff1fd5
	github.com/hanwen/go-fuse/v2 v2.12.1
	golang.org/x/sys v0.50.0
)

replace bazil.org/fuse => ../../third_party/bazil-fuse
