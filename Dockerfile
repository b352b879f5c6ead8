# The omniroute image: a prebuilt static binary on distroless, as prometheus/alertmanager ships.
# `make image` builds .build/$(OS)-$(ARCH)/omniroute with CGO_ENABLED=0, then this file.
#
#   BASE_IMAGE  the runtime base: distroless static nonroot (CA certificates, tzdata, no shell).
#               Pin it by digest where you build: --build-arg BASE_IMAGE=gcr.io/...@sha256:...
#   OS, ARCH    which prebuilt binary to copy.
#   VERSION, REVISION, CREATED  the OCI labels.
#
# .build/rootfs/ is copied over the base as it is. `make image` leaves it empty; `make test`,
# which reaches no registry, builds FROM scratch (--build-arg BASE_IMAGE=scratch) and puts the
# host's CA bundle there as etc/ssl/certs/ca-certificates.crt.
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE_IMAGE}

ARG OS=linux
ARG ARCH=amd64
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="omniroute" \
      org.opencontainers.image.description="Salesforce Omni-Channel external routing daemon" \
      org.opencontainers.image.source="https://github.com/omniroute/omniroute" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY .build/rootfs/ /
COPY .build/${OS}-${ARCH}/omniroute /bin/omniroute

USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/bin/omniroute"]
CMD ["run"]
