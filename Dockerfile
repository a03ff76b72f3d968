# syntax=docker/dockerfile:1
# piperun in one static binary on a distroless base, running as non-root.
#   docker build -t piperun .
#   docker run -p 8080:8080 -v piperun-data:/data -v "$PWD/images:/images:ro" piperun serve --addr 0.0.0.0:8080

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change of the sources reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (modernc.org/sqlite): no C toolchain, no libc in the runtime image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/piperun/piperun/cli.Version=${VERSION}" \
	-o /out/piperun ./cmd/piperun
# Empty mount points owned by the runtime user: Docker gives a new named
# volume the ownership of its mount point in the image, so every target a
# volume is mounted on (docker-compose.yml) must exist here, owned by the
# runtime user, or the non-root process cannot write it
# (deploy/compose_test.go checks this).
RUN mkdir -p /out/data /out/images

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/piperun /usr/local/bin/piperun
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/images /images
USER 65532:65532
ENV PIPERUN_DATA_DIR=/data \
	PIPERUN_IMAGES_DIR=/images
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["piperun"]
CMD ["serve", "--addr", "0.0.0.0:8080"]
