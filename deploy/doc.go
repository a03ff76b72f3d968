// Package deploy holds the checks of the deployment files at the root of
// the repository (docker-compose.yml, Dockerfile) that need no Docker
// engine: its tests load the compose file as Docker Compose would and check
// it against what the piperun binary actually reads.
package deploy
