# syntax=docker/dockerfile:1
# The berth reconciler image: Node 24 running berth's TypeScript sources directly (type
# stripping, no build step) and the oras CLI built from its Go module.
#   docker build -t <registry>/berth:0.1.0 .
#   berth install --image <registry>/berth:0.1.0 --apply
# test/image.test.ts lays this file's stages out on disk and runs the result against the
# test ground, as the Deployment from `berth install` runs it.

ARG NODE_VERSION=24
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS oras
# Keep in step with test/ground/parts.ts (a test checks it).
ARG ORAS_VERSION=v1.3.6
RUN CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" oras.land/oras/cmd/oras@${ORAS_VERSION}

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Runtime dependencies only; none of them needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=oras /out/oras /usr/local/bin/oras
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
