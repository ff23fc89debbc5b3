# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
ARG TARGET

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS="-trimpath -mod=readonly"
ENV LEGACY old style value
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build,sharing=locked \
    --mount=type=bind,source=.,target=/src,rw \
    go build -o /out/app ./cmd/app
ARG VERSION=dev

FROM debian:12-slim AS runtime
LABEL org.opencontainers.image.title="app" maintainer=me
COPY --from=build --chown=app:app --chmod=0755 /out/app /usr/local/bin/app
COPY --link --exclude=*.md --exclude=docs/ ["conf dir/", "/etc/app/"]
USER app
EXPOSE 8080/tcp 9090
VOLUME ["/data", "/cache"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=1m30s --retries=3 CMD curl -f http://localhost:8080/ || exit 1
STOPSIGNAL SIGTERM
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENTRYPOINT ["/usr/local/bin/app"]
CMD ["serve", "--port", "8080"]

FROM runtime
ONBUILD COPY . /app
ONBUILD RUN make
MAINTAINER someone@example.com
HEALTHCHECK NONE
CMD echo "shell form" $HOME
