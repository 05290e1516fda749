// Package deploy holds the container image and Kubernetes/KServe manifests
// for `convlstm-run serve` (see README.md); its tests parse every manifest
// and check it against the server's flags and endpoints.
package deploy
