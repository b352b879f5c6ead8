// Package chart holds the tests of the Helm chart in charts/omniroute, and the generator of its
// README.
//
// The tests render the chart with the pinned helm (the Makefile's HELM_VERSION: $HELM, else
// bin/helm-VERSION, built once by `go install helm.sh/helm/v4/cmd/helm@VERSION` when missing, as
// `make helm` does) for each values file in
// charts/omniroute/ci, decode every manifest strictly into the Kubernetes API types (the
// prometheus-operator kinds into local structs of the fields the chart uses), and check:
//
//   - the kinds each values file renders (the Lease RBAC, the PodDisruptionBudget and the
//     topology spread only with leader election and two replicas);
//   - the Deployment's contract with the daemon: every OMNIROUTE_* variable is one that
//     connector.Config reads, the mapping is a directory mount, the JWT key a file;
//   - that every metric the alerts and the dashboard use is registered by the daemon, and that
//     every alert expression and dashboard query parses as PromQL;
//   - that the Makefile builds, labels and checks the image with one VERSION;
//   - that README.md is what the generator makes of values.yaml, where every value must carry
//     a `# --` comment (`make chart-readme` rewrites it).
//
// It has no non-test code but the README generator, and nothing imports it.
package chart
