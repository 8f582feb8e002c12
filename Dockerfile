# webtier's container image: a static binary on distroless, run as a user
# without privileges.
#
#   docker build -t webtier --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d --name webtier -p 80:8080 --stop-timeout 60 \
#       -v $PWD/webtier.yaml:/etc/webtier/webtier.yaml:ro webtier
#
# The build stage runs deploy/build.sh, the same script CI runs
# (e2e/test.sh), so CI proves this build command works without a container
# engine.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=""
RUN VERSION="$VERSION" sh deploy/build.sh /out/webtier \
 && /out/webtier validate -config deploy/webtier.yaml \
 && mkdir -p /out/state/acme

# distroless/static: CA certificates, /etc/passwd with the user nonroot
# (65532), tzdata, and no shell or package manager to attack.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/webtier /usr/local/bin/webtier
COPY deploy/webtier.yaml /etc/webtier/webtier.yaml
# tls.acme's default storage, writable by the user below; a named volume
# mounted here (-v webtier-acme:/var/lib/webtier) starts with its owner.
COPY --from=build --chown=65532:65532 /out/state /var/lib/webtier
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 65532:65532
# The example config's listener. Ports below 1024 need root or
# CAP_NET_BIND_SERVICE, which drop: [ALL] (Kubernetes' restricted profile)
# removes: publish 8080 as 80 instead (docker run -p 80:8080; a Service's
# targetPort). README's Deploy section weighs the other ways.
EXPOSE 8080
# SIGTERM starts webtier's drain: the health endpoint answers 503, the
# listeners keep serving for drain.wait, then in-flight requests finish
# within drain.timeout. Docker kills after 10 s unless told otherwise:
# docker run --stop-timeout 60 (compose: stop_grace_period: 60s).
STOPSIGNAL SIGTERM
# No shell in the image: webtier asks its own health endpoint, 200 while
# serving, 503 while draining.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/webtier", "health", "-url", "http://127.0.0.1:8080/health_check.html", "-timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/webtier"]
CMD ["-config", "/etc/webtier/webtier.yaml"]
