# syntax=docker/dockerfile:1
# smi-metrics container image: the server and every adapter the tree builds,
# on Debian 12 slim with only the runtime libraries, running as a non-root
# user.  The Helm chart's default image (charts/smi-metrics, image.repository
# smi-metrics, tag = chart appVersion) is this one:
#
#   docker build -t smi-metrics:0.1.0 .
#   kind load docker-image smi-metrics:0.1.0        # or: minikube image load smi-metrics:0.1.0
#
# tests/helm/run.sh checks this file without a Docker engine: it runs the
# build stage's commands on the host against the context .dockerignore lets
# through, and checks that the runtime packages cover every shared library
# the installed binaries need (ldd + dpkg -S) and nothing more.

ARG DEBIAN_RELEASE=bookworm

# --- build stage: toolchain and -dev packages ------------------------------
FROM debian:${DEBIAN_RELEASE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential autoconf automake libtool pkg-config \
      libmicrohttpd-dev libgnutls28-dev libssl-dev libcurl4-openssl-dev \
      libjansson-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# --prefix=/usr: the server at /usr/bin/smi-metrics, adapters in its
# compiled-in directory /usr/lib/smi-metrics/adapters.
RUN autoreconf -fi \
 && ./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var \
 && make -j"$(nproc)" \
 && make install-strip DESTDIR=/out \
 && rm -rf /out/usr/include /out/usr/lib/pkgconfig

# --- runtime stage ---------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim
# libmicrohttpd12 (HTTP server; TLS through libgnutls30), libssl3 (client
# certificate verification), libcurl4 (Prometheus client), libjansson4
# (JSON), libyaml-0-2 (config); ca-certificates for https Prometheus URLs.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libgnutls30 libssl3 libcurl4 libjansson4 libyaml-0-2 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log
COPY --from=build /out/usr/bin/smi-metrics /usr/bin/smi-metrics
COPY --from=build /out/usr/lib/smi-metrics/adapters/ /usr/lib/smi-metrics/adapters/
LABEL org.opencontainers.image.title="smi-metrics" \
      org.opencontainers.image.description="SMI Traffic Metrics API server (metrics.smi-spec.io/v1alpha1) with mesh adapters"
# 8443: the API (HTTPS); 8080: /livez, /readyz, /metrics (HTTP).
EXPOSE 8443 8080
# The numeric UID lets Kubernetes check runAsNonRoot without /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/usr/bin/smi-metrics"]
CMD ["--config", "/etc/smi-metrics/config/config.yaml"]
