# certgate container image: a static binary on distroless, running as
# non-root, fit for a read-only root filesystem.
#
#   docker build -t certgate --build-arg VERSION=v1.0.0 .
#   docker run --read-only -v certgate-state:/var/lib/certgate \
#     -v $PWD/conf:/etc/certgate:ro -p 8443:8443 certgate
#
# certgate writes only to revocation.cacheDir and serverTLS.storage; point
# both below /var/lib/certgate (a volume here, an emptyDir in Kubernetes).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/certgate ./cmd/certgate \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/certgate /certgate
# An empty, writable home for CRL cache and certmagic storage; with
# --read-only, docker still mounts a volume here.
COPY --from=build --chown=65532:65532 /out/state /var/lib/certgate
VOLUME ["/var/lib/certgate"]
USER 65532:65532
ENV CERTGATE_CONFIG=/etc/certgate/certgate.yaml
EXPOSE 8443 9090
# distroless has no curl: the binary asks its own admin listener
# (admin.listen must be reachable on 127.0.0.1:9090, or pass --url).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["/certgate", "health"]
ENTRYPOINT ["/certgate"]
CMD ["serve"]
