# crm-distributor: multi-stage, production dependencies only, runs as non-root.
# The install is the README's production install, `npm ci --omit=dev`, which
# brings the project's own Node (the pinned `node` package); that Node runs
# the TypeScript sources directly (erasable syntax only), as `npm start` does.

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# npm runs node-gyp on better-sqlite3's binding.gyp: where its package holds a
# prebuilt N-API addon (linux x64 and arm64) gyp needs only python3 and make,
# and builds nothing; elsewhere g++ compiles one.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ \
 && npm ci --omit=dev \
 && rm -rf /var/lib/apt/lists/*

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=50051 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    DATABASE_URL=sqlite:/data/crm.sqlite
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY gen ./gen
COPY src ./src
RUN mkdir /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 50051 9464
# HOST=0.0.0.0 is reachable from other machines: the server refuses to start
# without CRM_TOKENS (or CRM_TOKENS_FILE), e.g. -e CRM_TOKENS=admin:...,bot:...
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD ["node_modules/.bin/node", "src/healthcheck.ts"]
# What `npm start` runs (package.json), without npm's process in between: the
# project's Node, with its heap settings (a smaller young generation keeps RSS
# low at no cost in throughput). The server is PID 1 and gets SIGTERM itself.
CMD ["node_modules/.bin/node", "--max-semi-space-size=32", "--max-old-space-size=256", "src/main.ts"]
