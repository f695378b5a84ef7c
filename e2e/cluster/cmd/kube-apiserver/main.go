// kube-apiserver, built from the k8s.io/kubernetes module pinned in ../../go.mod.
//
// The same main as k8s.io/kubernetes/cmd/kube-apiserver/apiserver.go (a main package cannot be imported, so
// it is repeated here). Version information is stamped by devtools/kubecluster.py with -ldflags -X, as
// kubernetes' own hack/lib/version.sh does.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
