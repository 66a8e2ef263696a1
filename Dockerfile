# crm-distributor: multi-stage, production dependencies only, runs as non-root.
# Node 24 runs the TypeScript sources directly (erasable syntax only).

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# better-sqlite3 compiles its native addon here when no prebuilt one matches.
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
  CMD ["node", "src/healthcheck.ts"]
# Heap settings as in `npm start`: a smaller young generation keeps RSS low at no cost in throughput.
CMD ["node", "--max-semi-space-size=16", "--max-old-space-size=256", "src/main.ts"]
