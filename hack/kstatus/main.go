// kstatus prints the health Flux (kstatus, sigs.k8s.io/cli-utils/pkg/kstatus) computes for each
// object in a JSON list read from stdin: one JSON line {"name", "status", "message"} per object.
// The GitOps tests run it on real HotfixReleases, so what Flux's `wait: true` sees is tested, not assumed.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	// apimachinery's decoder keeps integers as int64, as the API server's objects have them (the
	// standard library's would make metadata.generation a float64, which unstructured refuses)
	var objects []map[string]interface{}
	data, err := io.ReadAll(os.Stdin)
	if err == nil {
		err = utiljson.Unmarshal(data, &objects)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: stdin must be a JSON list of objects:", err)
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, obj := range objects {
		u := &unstructured.Unstructured{Object: obj}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kstatus:", u.GetName(), err)
			os.Exit(1)
		}
		if err := out.Encode(result{Name: u.GetName(), Status: res.Status.String(), Message: res.Message}); err != nil {
			os.Exit(1)
		}
	}
}
