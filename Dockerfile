# syntax=docker/dockerfile:1
# The berth reconciler image: Node 24 running berth's TypeScript sources directly (type
# stripping, no build step) and the oras CLI built from its Go module.
#   docker build -t <registry>/berth:0.1.0 .      (or: buildah build --timestamp 0 …)
#   berth install --image <registry>/berth:0.1.0 --apply
# The tests build this very file with buildah (`npm run image`) and run the image as a pod on
# the test ground's real node (test/node.test.ts). Reproducible: with --timestamp 0 (buildah) or
# SOURCE_DATE_EPOCH (BuildKit), the same commit gives the same image digest.

ARG NODE_VERSION=24
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS oras
# Keep in step with test/ground/parts.ts (a test checks it).
ARG ORAS_VERSION=v1.3.6
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w -buildid=" oras.land/oras/cmd/oras@${ORAS_VERSION}

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only; none of them needs an install script.
# Only node_modules leaves this stage (no npm cache). Type declarations and source maps are half
# of it and nothing at run time reads them.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=oras /out/oras /usr/local/bin/oras
# oras verifies registries' TLS against the system roots; node's slim image has none of its own.
COPY --from=oras /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY api ./api
COPY cli ./cli
COPY install ./install
COPY shared ./shared
COPY packager ./packager
COPY reconciler ./reconciler
# The "nonroot" uid of distroless images; the Deployment also sets it and a read-only root.
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/berth.js"]
CMD ["reconciler", "--leader-elect"]
