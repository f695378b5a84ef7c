// etcd, built from the go.etcd.io/etcd/server/v3 module pinned in ../../go.mod.
//
// The same main as go.etcd.io/etcd/v3's main.go (the etcd binary's module is not a library).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
