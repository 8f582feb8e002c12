# Placeholder image for webtier. Packaging (image layout, config mount,
# capabilities for ports below 1024, release tags) is a later issue.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/webtier ./cmd/webtier

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin webtier \
 && mkdir -p /etc/webtier
COPY --from=build /out/webtier /usr/local/bin/webtier
USER webtier
ENTRYPOINT ["/usr/local/bin/webtier"]
CMD ["-config", "/etc/webtier/webtier.yaml"]
