// Package deploy holds what runs webtier in production, and tests that
// keep it true to webtier: build.sh (the build the Dockerfile and CI both
// run), webtier.yaml (the container image's config), systemd/ (the unit)
// and kubernetes/ (ConfigMap, Deployment, Service). The tests check, with
// no container engine or cluster, that the configs load, that probes,
// health checks and stop timeouts match the health endpoint and the drain
// they rely on, and that systemd-analyze accepts the unit.
package deploy
